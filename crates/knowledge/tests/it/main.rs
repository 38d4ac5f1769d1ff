//! Integration tests of the knowledge crate (one binary: chunking, index, embeddings, eval).

mod chunking;
mod embeddings;
mod eval;
mod fixtures;
mod index;
