//! Gives the shared library GNS's soname, so a program linked against either finds the other.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libGameNetworkingSockets.so");
}
