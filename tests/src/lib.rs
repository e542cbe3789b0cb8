//! Helpers for crac's end-to-end tests: locating the built binaries and building test programs.
