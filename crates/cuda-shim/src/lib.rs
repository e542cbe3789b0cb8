//! crac's `libcudart` shim (upper half). Built out in the cudart-shim work.
