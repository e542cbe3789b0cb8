//! crac's device-backend trait, shared by the `sim` CPU model and the real CUDA backend.
