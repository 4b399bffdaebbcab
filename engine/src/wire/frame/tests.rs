//! Unit and property tests for the frame codecs.
