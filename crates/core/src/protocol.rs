//! The control protocol between `crac_ckpt` and a launched process's agent: one JSON request and one JSON reply per connection, each length-capped.
