//! The lab's ids (plain data, the ground floor every part imports): a
//! node's key, a frame's endpoint, a client of the host's.

/// Names a node in the lab: its slot and the identity of the node that was
/// put there. A key outlives its node harmlessly: every lookup goes
/// through [`super::Lab::node`], which checks both, so a deadline or a
/// descriptor event for a deleted node finds nothing (never another node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    pub(super) index: usize,
    pub(super) generation: u64,
}

impl NodeKey {
    /// Where the node sits among the nodes: small and dense (reused after a
    /// node goes), so a host may keep a node's state in a list by it.
    pub fn index(self) -> usize {
        self.index
    }

    /// Tells apart the nodes that had the same [`NodeKey::index`] (never 0).
    pub fn generation(self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
impl NodeKey {
    /// A key for tests that need one without a lab.
    pub fn for_tests(index: usize) -> NodeKey {
        NodeKey {
            index,
            generation: 1,
        }
    }
}

/// Where a frame comes from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// The node itself (a VPCS process's own socket).
    Node(NodeKey),
    /// The NIO of a node's port (by index in its port list).
    Nio(NodeKey, usize),
}

/// Identifies one console client: chosen by the host when it accepts the
/// connection, opaque to the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    /// The host's handle for the connection (the reactor's token).
    pub handle: usize,
    /// Distinguishes clients that reuse a handle.
    pub serial: u64,
}
