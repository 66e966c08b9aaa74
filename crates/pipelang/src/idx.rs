//! Typed indices: a `StageId` cannot index the models, nor a plain `usize` the stages. Lists
//! indexed by an id are `IndexVec<Id, T>`; they deliberately do not deref to a slice, so a
//! bare `usize` index is a compile error rather than a silent mix-up.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An index into one kind of list.
pub trait Idx: Copy + Eq + Ord + std::hash::Hash + fmt::Debug + 'static {
    fn new(i: usize) -> Self;
    fn index(self) -> usize;
}

/// Declares a `u32`-backed index newtype (serialised as its number).
#[macro_export]
macro_rules! newtype_index {
    ($(#[$attr:meta])* $vis:vis struct $name:ident;) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        $vis struct $name(u32);

        impl $crate::idx::Idx for $name {
            fn new(i: usize) -> Self {
                $name(u32::try_from(i).expect("an index fits in u32"))
            }
            fn index(self) -> usize {
                self.0 as usize
            }
        }

        #[allow(dead_code)]
        impl $name {
            pub fn new(i: usize) -> Self {
                <Self as $crate::idx::Idx>::new(i)
            }
            pub fn index(self) -> usize {
                <Self as $crate::idx::Idx>::index(self)
            }
        }
    };
}

/// A `Vec<T>` indexed by `I`.
#[derive(Clone, PartialEq)]
pub struct IndexVec<I, T> {
    raw: Vec<T>,
    _index: PhantomData<fn(&I)>,
}

impl<I: Idx, T> IndexVec<I, T> {
    pub fn new() -> Self {
        IndexVec::from_raw(vec![])
    }
    pub fn from_raw(raw: Vec<T>) -> Self {
        IndexVec {
            raw,
            _index: PhantomData,
        }
    }
    /// `n` copies of `value`, one per index.
    pub fn from_elem(value: T, n: usize) -> Self
    where
        T: Clone,
    {
        IndexVec::from_raw(vec![value; n])
    }
    /// One value per index of `n`, made by `f`.
    pub fn from_fn(n: usize, f: impl FnMut(I) -> T) -> Self {
        IndexVec::from_raw((0..n).map(I::new).map(f).collect())
    }
    pub fn push(&mut self, value: T) -> I {
        self.raw.push(value);
        I::new(self.raw.len() - 1)
    }
    pub fn len(&self) -> usize {
        self.raw.len()
    }
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
    pub fn get(&self, i: I) -> Option<&T> {
        self.raw.get(i.index())
    }
    pub fn get_mut(&mut self, i: I) -> Option<&mut T> {
        self.raw.get_mut(i.index())
    }
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.raw.iter()
    }
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.raw.iter_mut()
    }
    /// `(index, value)` pairs, as `iter().enumerate()` with typed indices.
    pub fn iter_enumerated(&self) -> impl DoubleEndedIterator<Item = (I, &T)> + ExactSizeIterator {
        self.raw.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }
    pub fn indices(&self) -> impl DoubleEndedIterator<Item = I> + ExactSizeIterator + 'static {
        (0..self.raw.len()).map(I::new)
    }
    /// The index of the first value for which `f` holds.
    pub fn position(&self, f: impl FnMut(&T) -> bool) -> Option<I> {
        self.raw.iter().position(f).map(I::new)
    }
    pub fn last(&self) -> Option<&T> {
        self.raw.last()
    }
    pub fn as_raw(&self) -> &[T] {
        &self.raw
    }
    pub fn into_raw(self) -> Vec<T> {
        self.raw
    }
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> IndexVec<I, U> {
        IndexVec::from_raw(self.raw.into_iter().map(f).collect())
    }
}

impl<I: Idx, T> Default for IndexVec<I, T> {
    fn default() -> Self {
        IndexVec::new()
    }
}

impl<I: Idx, T> Index<I> for IndexVec<I, T> {
    type Output = T;
    fn index(&self, i: I) -> &T {
        &self.raw[i.index()]
    }
}

impl<I: Idx, T> IndexMut<I> for IndexVec<I, T> {
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.raw[i.index()]
    }
}

impl<I: Idx, T> FromIterator<T> for IndexVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(it: It) -> Self {
        IndexVec::from_raw(it.into_iter().collect())
    }
}

impl<'a, I: Idx, T> IntoIterator for &'a IndexVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter()
    }
}

impl<'a, I: Idx, T> IntoIterator for &'a mut IndexVec<I, T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter_mut()
    }
}

impl<I: Idx, T> IntoIterator for IndexVec<I, T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.into_iter()
    }
}

impl<I, T: fmt::Debug> fmt::Debug for IndexVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<I, T: Serialize> Serialize for IndexVec<I, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de, I: Idx, T: Deserialize<'de>> Deserialize<'de> for IndexVec<I, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(IndexVec::from_raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::newtype_index! { struct A; }

    #[test]
    fn typed_push_index_and_enumerate() {
        let mut v: IndexVec<A, &str> = IndexVec::new();
        let a = v.push("a");
        let b = v.push("b");
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(v[b], "b");
        v[a] = "z";
        let seen: Vec<(usize, &str)> = v.iter_enumerated().map(|(i, s)| (i.index(), *s)).collect();
        assert_eq!(seen, vec![(0, "z"), (1, "b")]);
        assert_eq!(v.position(|s| *s == "b"), Some(b));
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["z","b"]"#);
        assert_eq!(serde_json::to_string(&b).unwrap(), "1");
    }
}
