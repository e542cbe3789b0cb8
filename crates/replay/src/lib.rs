//! crac's CUDA call log: state-creating calls only, virtual handles, replay into a backend.
#![forbid(unsafe_code)]
