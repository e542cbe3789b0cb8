//! crac's lower-half agent: the control socket and the requests it answers.
