//! Text documents about the shape world: noisy web-like pages, clean lessons, long stories.

use super::world::{Dice, Obj, Place, SHAPES, Scene, at};

/// One true sentence about the world.
pub fn fact(d: &mut Dice) -> String {
    let o = d.obj();
    let p = d.place();
    match d.below(8) {
        0 => format!("A {} has {}.", o.shape.word(), o.shape.corners()),
        1 => format!("{} is {}.", capitalise(o.colour.word()), o.colour.warmth()),
        2 => format!(
            "A large {} is bigger than a small {}.",
            o.shape.word(),
            o.shape.word()
        ),
        3 => format!("The {} is {}.", o.name(), at(p)),
        4 => {
            let n = d.range(2, 5);
            format!(
                "There are {} {} {}s in the box.",
                number(n),
                o.colour.word(),
                o.shape.word()
            )
        }
        5 => {
            let q = d.place();
            format!(
                "The {} moves from the {} to the {}.",
                o.name(),
                p.words(),
                q.words()
            )
        }
        6 => Scene {
            objs: vec![(o, p)],
            background: 0,
        }
        .sentence(),
        _ => d
            .pick(&[
                "Red and blue make purple.",
                "Blue and yellow make green.",
                "A diamond is a square turned on its corner.",
                "Squares and diamonds both have four corners.",
            ])
            .into(),
    }
}

pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn number(n: usize) -> &'static str {
    [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ][n.min(9)]
}

/// A web-like page: facts with boilerplate, odd casing and stray numbers.
pub fn web_doc(d: &mut Dice) -> String {
    let mut parts = Vec::new();
    if d.chance(40) {
        parts.push(format!(
            "Posted by user{} on day {}.",
            d.below(1000),
            d.range(1, 365)
        ));
    }
    for _ in 0..d.range(2, 6) {
        let mut s = fact(d);
        if d.chance(15) {
            s = s.to_lowercase();
        }
        if d.chance(10) {
            s = s.replace('.', "!!");
        }
        parts.push(s);
    }
    if d.chance(30) {
        parts.push(
            d.pick(&[
                "Click here for more.",
                "Share this page.",
                "Read more >>",
                "#shapes #colours",
            ])
            .into(),
        );
    }
    if d.chance(20) {
        parts.push(format!("{}", d.below(100_000)));
    }
    parts.join(" ")
}

/// A clean, regular lesson about one scene and its shapes.
pub fn hq_doc(d: &mut Dice) -> String {
    let n = d.range(1, 3);
    let scene = d.scene(n);
    let mut s = vec![scene.sentence()];
    for (o, p) in &scene.objs {
        s.push(format!("The {} is {}.", o.name(), at(*p)));
        s.push(format!("A {} has {}.", o.shape.word(), o.shape.corners()));
        s.push(format!(
            "{} is {}.",
            capitalise(o.colour.word()),
            o.colour.warmth()
        ));
    }
    s.push(format!(
        "In all, the picture shows {} {}.",
        number(scene.objs.len()),
        if scene.objs.len() == 1 {
            "shape"
        } else {
            "shapes"
        }
    ));
    s.join(" ")
}

/// A long story: objects move around the grid step by step, and the end asks about the start,
/// so the answer needs the whole context.
pub fn long_doc(d: &mut Dice) -> String {
    let n = d.range(2, 3);
    let mut scene = d.scene(n);
    let start = scene.clone();
    let mut s = vec![
        format!("This is a story about {} shapes.", number(n)),
        scene.sentence(),
    ];
    let steps = d.range(25, 45);
    for step in 1..=steps {
        let i = d.below(n);
        let to = d.place();
        if scene.objs.iter().any(|(_, q)| *q == to) {
            s.push(format!("At step {step} nothing moves."));
            continue;
        }
        let (o, from) = scene.objs[i];
        s.push(format!(
            "At step {step} the {} moves from the {} to the {}.",
            o.name(),
            from.words(),
            to.words()
        ));
        scene.objs[i].1 = to;
        if d.chance(20) {
            let k = d.below(n);
            s.push(fact_about(d, &scene.objs[k].0));
        }
    }
    for (k, ((o, first), (_, last))) in start.objs.iter().zip(&scene.objs).enumerate() {
        s.push(format!(
            "Question {}: where did the {} start? It started {}. Where is it now? It is {}.",
            k + 1,
            o.name(),
            at(*first),
            at(*last)
        ));
    }
    s.join(" ")
}

/// A true sentence about one object, for the text next to its picture.
pub fn fact_about(d: &mut Dice, o: &Obj) -> String {
    match d.below(3) {
        0 => format!("A {} has {}.", o.shape.word(), o.shape.corners()),
        1 => format!("{} is {}.", capitalise(o.colour.word()), o.colour.warmth()),
        _ => format!(
            "The {} {} is {}.",
            o.colour.word(),
            o.shape.word(),
            o.size.word()
        ),
    }
}

/// Sentences that introduce and describe one picture inside an interleaved document.
pub fn picture_intro(d: &mut Dice) -> &'static str {
    d.pick(&[
        "Look at this picture: ",
        "Here is an image. ",
        "The next picture shows a shape. ",
        "See below. ",
    ])
}

pub fn movement(o: &Obj, from: Place, to: Place) -> String {
    format!(
        "The {} moves from the {} to the {}.",
        o.name(),
        from.words(),
        to.words()
    )
}

/// Every shape word, for OCR labels.
pub fn shape_words() -> Vec<&'static str> {
    SHAPES.iter().map(|s| s.word()).collect()
}
