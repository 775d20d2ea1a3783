//! A small vector of `Copy` values that keeps up to `N` of them inline (no allocation) and
//! spills to the heap beyond that. Safe code only: the inline array is filled with copies of
//! the first value pushed, so no placeholder value is needed.

use std::ops::{Deref, DerefMut};

#[derive(Clone)]
enum Store<T: Copy, const N: usize> {
    Inline(usize, [T; N]),
    Heap(Vec<T>),
}

/// Up to `N` values inline, then a `Vec`.
#[derive(Clone)]
pub struct InlineVec<T: Copy, const N: usize>(Store<T, N>);

impl<T: Copy, const N: usize> InlineVec<T, N> {
    /// Empty (no allocation).
    #[inline]
    pub fn new() -> Self {
        InlineVec(Store::Heap(Vec::new()))
    }

    /// Appends `x`.
    #[inline]
    pub fn push(&mut self, x: T) {
        match &mut self.0 {
            Store::Inline(len, buf) => {
                if let Some(slot) = buf.get_mut(*len) {
                    *slot = x;
                    *len += 1;
                } else {
                    let mut v = Vec::with_capacity(N * 2);
                    v.extend_from_slice(buf);
                    v.push(x);
                    self.0 = Store::Heap(v);
                }
            }
            Store::Heap(v) => {
                if v.is_empty() && v.capacity() == 0 && N > 0 {
                    self.0 = Store::Inline(1, [x; N]);
                } else {
                    v.push(x);
                }
            }
        }
    }

    /// Removes every value (keeps a heap buffer, if any).
    #[inline]
    pub fn clear(&mut self) {
        match &mut self.0 {
            Store::Inline(len, _) => *len = 0,
            Store::Heap(v) => v.clear(),
        }
    }

    /// Keeps the first of each run of values with equal keys.
    pub fn dedup_by_key<K: PartialEq>(&mut self, mut key: impl FnMut(&T) -> K) {
        match &mut self.0 {
            Store::Inline(len, buf) => {
                let mut w = 0usize;
                for r in 0..*len {
                    let Some(&x) = buf.get(r) else {
                        break;
                    };
                    let keep = match w.checked_sub(1).and_then(|p| buf.get(p)) {
                        None => true,
                        Some(prev) => key(prev) != key(&x),
                    };
                    if keep {
                        if let Some(s) = buf.get_mut(w) {
                            *s = x;
                        }
                        w += 1;
                    }
                }
                *len = w;
            }
            Store::Heap(v) => v.dedup_by_key(|x| key(x)),
        }
    }
}

impl<T: Copy, const N: usize> Default for InlineVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Extend<T> for InlineVec<T, N> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

impl<T: Copy, const N: usize> FromIterator<T> for InlineVec<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = Self::new();
        v.extend(iter);
        v
    }
}

impl<T: Copy, const N: usize> Deref for InlineVec<T, N> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match &self.0 {
            Store::Inline(len, buf) => buf.get(..*len).unwrap_or(&[]),
            Store::Heap(v) => v,
        }
    }
}

impl<T: Copy, const N: usize> DerefMut for InlineVec<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.0 {
            Store::Inline(len, buf) => buf.get_mut(..*len).unwrap_or(&mut []),
            Store::Heap(v) => v,
        }
    }
}

impl<T: Copy + std::fmt::Debug, const N: usize> std::fmt::Debug for InlineVec<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Copy + PartialEq, const N: usize> PartialEq for InlineVec<T, N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Copy + Eq, const N: usize> Eq for InlineVec<T, N> {}

impl<'a, T: Copy, const N: usize> IntoIterator for &'a InlineVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::InlineVec;

    #[test]
    fn push_spill_dedup_clear() {
        let mut v: InlineVec<u32, 3> = InlineVec::new();
        assert!(v.is_empty());
        for x in [1, 1, 2, 3, 3, 3, 4] {
            v.push(x);
        }
        assert_eq!(&*v, &[1, 1, 2, 3, 3, 3, 4]);
        v.dedup_by_key(|x| *x);
        assert_eq!(&*v, &[1, 2, 3, 4]);
        v.clear();
        assert!(v.is_empty());
        let mut w: InlineVec<u32, 4> = [5, 5, 6].into_iter().collect();
        w.dedup_by_key(|x| *x);
        assert_eq!(&*w, &[5, 6]);
        w.sort_unstable_by_key(|x| std::cmp::Reverse(*x));
        assert_eq!(&*w, &[6, 5]);
        w.clear();
        w.push(9);
        assert_eq!(&*w, &[9]);
        let e: InlineVec<u32, 4> = InlineVec::new();
        assert_eq!(e, InlineVec::default());
    }
}
