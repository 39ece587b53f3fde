//! The nodes, by key and by id (plain data, no I/O): a slab whose keys
//! carry a generation, so a key outlives its node harmlessly, and the
//! index from a node's UUID to its key. Every lookup by key checks the
//! generation here, in one place.

use super::id::NodeKey;
use super::node::Node;
use slab::Slab;
use std::collections::HashMap;
use uuid::Uuid;

/// Every node of the lab.
#[derive(Debug, Default)]
pub struct Registry {
    nodes: Slab<Node>,
    index: HashMap<Uuid, NodeKey>,
    next_generation: u64,
}

impl Registry {
    /// The node under `key`, if it is still the node the key was made for.
    #[inline]
    pub fn get(&self, key: NodeKey) -> Option<&Node> {
        self.nodes
            .get(key.index)
            .filter(|n| n.key.generation == key.generation)
    }

    /// Mutable [`Registry::get`].
    #[inline]
    pub fn get_mut(&mut self, key: NodeKey) -> Option<&mut Node> {
        self.nodes
            .get_mut(key.index)
            .filter(|n| n.key.generation == key.generation)
    }

    /// The key of node `id`.
    pub fn key_of(&self, id: Uuid) -> Option<NodeKey> {
        self.index.get(&id).copied()
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().map(|(_, n)| n)
    }

    /// The key the next inserted node will have.
    pub fn vacant_key(&self) -> NodeKey {
        NodeKey {
            index: self.nodes.vacant_key(),
            generation: self.next_generation + 1,
        }
    }

    /// Add `node`, made with [`Registry::vacant_key`].
    pub fn insert(&mut self, node: Node) {
        debug_assert_eq!(node.key, self.vacant_key());
        self.next_generation = node.key.generation;
        self.index.insert(node.id, node.key);
        self.nodes.insert(node);
    }

    /// Remove the node under `key`, if it is still there.
    pub fn take(&mut self, key: NodeKey) -> Option<Node> {
        self.get(key)?;
        let node = self.nodes.remove(key.index);
        self.index.remove(&node.id);
        Some(node)
    }

    /// Whether a node has id `id`.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.index.contains_key(id)
    }

    /// The slab and the index agree: every node indexed under its key.
    pub fn check(&self) -> Result<(), String> {
        if self.index.len() != self.nodes.len() {
            return Err(format!(
                "{} indexed, {} nodes",
                self.index.len(),
                self.nodes.len()
            ));
        }
        for node in self.iter() {
            if self.index.get(&node.id) != Some(&node.key) {
                return Err(format!("node {} not indexed under its key", node.id));
            }
        }
        Ok(())
    }
}
