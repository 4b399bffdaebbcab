//! A FIFO for what a connection queues only now and then (status changes, control datagrams):
//! one pointer while empty instead of a 32-byte `VecDeque`, since most connections sit with
//! both empty (issue 16: memory per idle connection). The buffer goes when the queue drains.

use std::collections::VecDeque;

/// A `VecDeque` allocated on the first push and freed when the last item is taken.
#[derive(Debug, Clone)]
#[expect(
    clippy::box_collection,
    reason = "one word while empty, the point of the type"
)]
pub(crate) struct LazyQueue<T>(Option<Box<VecDeque<T>>>);

impl<T> Default for LazyQueue<T> {
    fn default() -> Self {
        LazyQueue(None)
    }
}

impl<T> LazyQueue<T> {
    /// An empty queue (no allocation).
    pub(crate) const fn new() -> Self {
        LazyQueue(None)
    }

    /// Appends `item`.
    pub(crate) fn push_back(&mut self, item: T) {
        self.0.get_or_insert_with(Box::default).push_back(item);
    }

    /// Takes the oldest item; the buffer is freed with the last one.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let q = self.0.as_mut()?;
        let item = q.pop_front();
        if q.is_empty() {
            self.0 = None;
        }
        item
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Drops everything queued, and the buffer.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::LazyQueue;

    #[test]
    fn fifo_order_and_no_buffer_while_empty() {
        let mut q = LazyQueue::new();
        assert!(q.is_empty() && q.0.is_none());
        q.push_back(1);
        q.push_back(2);
        assert!(!q.is_empty());
        assert_eq!(q.pop_front(), Some(1));
        assert!(q.0.is_some(), "one item left");
        q.push_back(3);
        assert_eq!(q.pop_front(), Some(2));
        assert_eq!(q.pop_front(), Some(3));
        assert!(q.0.is_none(), "freed with the last item");
        assert_eq!(q.pop_front(), None);
        q.push_back(4);
        q.clear();
        assert!(q.is_empty() && q.0.is_none());
    }

    #[test]
    fn one_word_when_empty() {
        assert_eq!(size_of::<LazyQueue<Vec<u8>>>(), size_of::<usize>());
    }
}
