//! Reading ELF headers from bytes: what the loader needs to map a program and its interpreter.
