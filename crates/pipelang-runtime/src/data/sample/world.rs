//! The small world the sample data talks about: shapes of a colour and size at a place on a
//! 3x3 grid, and the words that describe them.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    White,
    Purple,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    Small,
    Large,
}

pub const SHAPES: [Shape; 4] = [
    Shape::Circle,
    Shape::Square,
    Shape::Triangle,
    Shape::Diamond,
];
pub const COLOURS: [Colour; 6] = [
    Colour::Red,
    Colour::Green,
    Colour::Blue,
    Colour::Yellow,
    Colour::White,
    Colour::Purple,
];
pub const SIZES: [Size; 2] = [Size::Small, Size::Large];

impl Shape {
    pub fn word(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Diamond => "diamond",
        }
    }

    pub fn corners(self) -> &'static str {
        match self {
            Shape::Circle => "no corners",
            Shape::Square | Shape::Diamond => "four corners",
            Shape::Triangle => "three corners",
        }
    }
}

impl Colour {
    pub fn word(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::White => "white",
            Colour::Purple => "purple",
        }
    }

    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 190, 60],
            Colour::Blue => [50, 90, 230],
            Colour::Yellow => [235, 215, 40],
            Colour::White => [240, 240, 240],
            Colour::Purple => [160, 60, 200],
        }
    }

    pub fn warmth(self) -> &'static str {
        match self {
            Colour::Red | Colour::Yellow => "a warm colour",
            Colour::Green | Colour::Blue | Colour::Purple => "a cool colour",
            Colour::White => "the colour of snow",
        }
    }
}

impl Size {
    pub fn word(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// Half the side of the shape's bounding box in pixels (in a 32 px picture).
    pub fn radius(self) -> f32 {
        match self {
            Size::Small => 3.0,
            Size::Large => 5.0,
        }
    }
}

/// A cell of the 3x3 grid: row 0 is the top, col 0 the left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub row: u8,
    pub col: u8,
}

impl Place {
    pub fn words(self) -> &'static str {
        const NAMES: [[&str; 3]; 3] = [
            ["top left", "top", "top right"],
            ["left", "center", "right"],
            ["bottom left", "bottom", "bottom right"],
        ];
        NAMES[self.row as usize][self.col as usize]
    }

    /// Centre of the cell in a `side` px picture.
    pub fn centre(self, side: u32) -> (f32, f32) {
        let cell = side as f32 / 3.0;
        (
            (self.col as f32 + 0.5) * cell,
            (self.row as f32 + 0.5) * cell,
        )
    }
}

/// One shape in a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Obj {
    pub shape: Shape,
    pub colour: Colour,
    pub size: Size,
}

impl Obj {
    /// "small red circle"
    pub fn name(&self) -> String {
        format!(
            "{} {} {}",
            self.size.word(),
            self.colour.word(),
            self.shape.word()
        )
    }
}

/// A picture: objects at distinct places, on a background grey level.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub objs: Vec<(Obj, Place)>,
    pub background: u8,
}

impl Scene {
    /// The short caption of an image-text pair: "small red circle, top left".
    pub fn caption(&self) -> String {
        self.objs
            .iter()
            .map(|(o, p)| format!("{}, {}", o.name(), p.words()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A full sentence: "There is a small red circle at the top left."
    pub fn sentence(&self) -> String {
        let parts: Vec<String> = self
            .objs
            .iter()
            .map(|(o, p)| format!("a {} {}", o.name(), at(*p)))
            .collect();
        format!("There is {}.", parts.join(" and "))
    }
}

/// "at the top left" / "in the center"
pub fn at(p: Place) -> String {
    if p.row == 1 && p.col == 1 {
        "in the center".into()
    } else {
        format!("at the {}", p.words())
    }
}

/// A tiny deterministic helper over ChaCha (rand's distributions are avoided so the output
/// does not depend on their implementation details across versions).
pub struct Dice(pub ChaCha8Rng);

impl Dice {
    pub fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn obj(&mut self) -> Obj {
        Obj {
            shape: self.pick(&SHAPES),
            colour: self.pick(&COLOURS),
            size: self.pick(&SIZES),
        }
    }

    pub fn place(&mut self) -> Place {
        Place {
            row: self.below(3) as u8,
            col: self.below(3) as u8,
        }
    }

    /// A scene of `n` objects at distinct places.
    pub fn scene(&mut self, n: usize) -> Scene {
        let mut objs: Vec<(Obj, Place)> = Vec::with_capacity(n);
        while objs.len() < n {
            let p = self.place();
            if objs.iter().all(|(_, q)| *q != p) {
                objs.push((self.obj(), p));
            }
        }
        Scene {
            objs,
            background: self.pick(&[16u8, 28, 40]),
        }
    }
}
