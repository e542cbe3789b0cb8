//! The real CUDA backend (being written).
