//! Every header struct's size and field offsets as Rust sees them, for the layout test to compare with the C compiler's.
