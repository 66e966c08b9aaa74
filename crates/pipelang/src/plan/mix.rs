//! Mixture shares at any point of a stage: `ramp`s are linear in the stage's token position,
//! `rest` takes what its level leaves, nested groups multiply.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::ir::{DataId, IndexVec, MixNode, MixTarget, Weight};

/// In JSON, `{"nodes": [{"weight": .., "source": i} | {"weight": .., "group": [..]}], "sources": n}`;
/// a weight is `{"fixed": v}`, `"rest"` or `{"ramp": [from, to]}` (linear in the stage's tokens).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MixTree {
    nodes: Vec<Node>,
    sources: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Node {
    #[serde(with = "weight")]
    weight: Weight,
    target: Target,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Target {
    Source(DataId),
    Group(Vec<Node>),
}

fn convert(nodes: &[MixNode]) -> Vec<Node> {
    nodes
        .iter()
        .map(|n| Node {
            weight: n.weight.value,
            target: match &n.target {
                MixTarget::Source(d) => Target::Source(*d),
                MixTarget::Group(g) => Target::Group(convert(g)),
            },
        })
        .collect()
}

impl MixTree {
    pub fn new(nodes: &[MixNode], sources: usize) -> Self {
        MixTree {
            nodes: convert(nodes),
            sources,
        }
    }

    /// Share of every data source (indexed by `DataId`) at fraction `f` (0..=1) of the stage.
    pub fn at(&self, f: f64) -> IndexVec<DataId, f64> {
        let mut out = IndexVec::from_elem(0.0, self.sources);
        level(&self.nodes, f.clamp(0.0, 1.0), 1.0, &mut out);
        out
    }

    /// The non-zero shares by source name.
    pub fn named(&self, f: f64, names: &IndexVec<DataId, String>) -> BTreeMap<String, f64> {
        self.at(f)
            .iter_enumerated()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| (names[i].clone(), *v))
            .collect()
    }

    /// Sources that appear anywhere in the mixture.
    pub fn used_sources(&self) -> Vec<DataId> {
        let mut out = vec![];
        fn walk(nodes: &[Node], out: &mut Vec<DataId>) {
            for n in nodes {
                match &n.target {
                    Target::Source(d) => {
                        if !out.contains(d) {
                            out.push(*d)
                        }
                    }
                    Target::Group(g) => walk(g, out),
                }
            }
        }
        walk(&self.nodes, &mut out);
        out
    }
}

fn level(nodes: &[Node], f: f64, scale: f64, out: &mut IndexVec<DataId, f64>) {
    let fixed: f64 = nodes
        .iter()
        .map(|n| match n.weight {
            Weight::Fixed(v) => v,
            Weight::Ramp(a, b) => a + (b - a) * f,
            Weight::Rest => 0.0,
        })
        .sum();
    for n in nodes {
        let w = match n.weight {
            Weight::Fixed(v) => v,
            Weight::Ramp(a, b) => a + (b - a) * f,
            Weight::Rest => (1.0 - fixed).max(0.0),
        };
        match &n.target {
            Target::Source(d) => out[*d] += scale * w,
            Target::Group(g) => level(g, f, scale * w, out),
        }
    }
}

/// `Weight` as the plan's JSON spells it; the IR's own derive stays the checker's.
mod weight {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::check::ir::Weight;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum W {
        Fixed(f64),
        Rest,
        Ramp(f64, f64),
    }

    pub fn serialize<S: Serializer>(w: &Weight, s: S) -> Result<S::Ok, S::Error> {
        match *w {
            Weight::Fixed(v) => W::Fixed(v),
            Weight::Rest => W::Rest,
            Weight::Ramp(a, b) => W::Ramp(a, b),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weight, D::Error> {
        Ok(match W::deserialize(d)? {
            W::Fixed(v) => Weight::Fixed(v),
            W::Rest => Weight::Rest,
            W::Ramp(a, b) => Weight::Ramp(a, b),
        })
    }
}
