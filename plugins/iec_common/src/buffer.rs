//! Data buffers (hat-gateway's `iec101.slave.Buffer`): changes of buffered points kept,
//! in arrival order, until a master took them (104: acknowledged them; 101: they were
//! sent, with a link confirmation when the point is `with_ack`), and sent to every
//! master (connection) that opens. At most `size` entries; the oldest is dropped beyond
//! it. The 101 and 104 slaves share it.

use std::collections::{BTreeMap, HashMap};

use gateway_model::EventId;

/// One buffer, keyed by the id of the event that carried the value.
#[derive(Debug, Clone)]
pub struct Buffer<T> {
    size: usize,
    /// Arrival number -> entry; iteration order is arrival order.
    entries: BTreeMap<u64, (EventId, T)>,
    /// Event id -> arrival number, for removal on acknowledgement.
    index: HashMap<EventId, u64>,
    next: u64,
}

impl<T> Buffer<T> {
    /// An empty buffer holding at most `size` entries.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            entries: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
        }
    }

    /// Adds (or replaces, keeping its place) the entry of `event_id`, then drops the
    /// oldest entries beyond the size.
    pub fn add(&mut self, event_id: EventId, item: T) {
        if let Some(seq) = self.index.get(&event_id) {
            self.entries.insert(*seq, (event_id, item));
        } else {
            let seq = self.next;
            self.next += 1;
            self.entries.insert(seq, (event_id, item));
            self.index.insert(event_id, seq);
        }
        while self.entries.len() > self.size {
            if let Some((_, (id, _))) = self.entries.pop_first() {
                self.index.remove(&id);
            }
        }
    }

    /// Removes the entry of `event_id` (a master acknowledged it); absent ids are ignored.
    pub fn remove(&mut self, event_id: &EventId) {
        if let Some(seq) = self.index.remove(event_id) {
            self.entries.remove(&seq);
        }
    }

    /// Entries in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&EventId, &T)> {
        self.entries.values().map(|(id, item)| (id, item))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(instance: i64) -> EventId {
        EventId {
            server: 1,
            session: 1,
            instance,
        }
    }

    fn ids<T>(buffer: &Buffer<T>) -> Vec<i64> {
        buffer.iter().map(|(id, _)| id.instance).collect()
    }

    #[test]
    fn keeps_arrival_order_and_drops_the_oldest_beyond_size() {
        let mut buffer = Buffer::new(3);
        for i in [5, 2, 9, 4] {
            buffer.add(id(i), i);
        }
        assert_eq!(ids(&buffer), [2, 9, 4]);
        assert_eq!(buffer.len(), 3);
    }

    #[test]
    fn remove_takes_out_one_entry_and_ignores_unknown_ids() {
        let mut buffer = Buffer::new(10);
        for i in 1..=4 {
            buffer.add(id(i), i);
        }
        buffer.remove(&id(2));
        buffer.remove(&id(7));
        assert_eq!(ids(&buffer), [1, 3, 4]);
        buffer.add(id(2), 2);
        assert_eq!(ids(&buffer), [1, 3, 4, 2]);
    }

    #[test]
    fn re_adding_an_id_replaces_in_place() {
        let mut buffer = Buffer::new(10);
        buffer.add(id(1), "a");
        buffer.add(id(2), "b");
        buffer.add(id(1), "c");
        let items: Vec<_> = buffer.iter().map(|(_, v)| *v).collect();
        assert_eq!(items, ["c", "b"]);
    }

    #[test]
    fn size_zero_keeps_nothing() {
        let mut buffer = Buffer::new(0);
        buffer.add(id(1), ());
        assert!(buffer.is_empty());
    }
}
