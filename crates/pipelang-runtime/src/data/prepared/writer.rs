//! What a shard's reader hands to the format it is written in.

pub trait TokenWriter: Send {
    /// Appends tokens to the document being written.
    fn push(&mut self, ids: &[u32]) -> std::io::Result<()>;
    /// Ends the document with EOS.
    fn end_document(&mut self) -> std::io::Result<()>;
    /// Documents and tokens written so far (EOS included).
    fn counts(&self) -> (u64, u64);
    /// Puts every file in place (the data before its index), durably.
    fn commit(self: Box<Self>) -> std::io::Result<()>;
}
