//! Finding the program (`resolve`) and loading it like the kernel does (`enter`).
