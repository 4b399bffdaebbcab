//! The C++ interface objects: vtables laid out as GNS 1.6's class declarations under the Itanium ABI, pointing at the flat calls.
