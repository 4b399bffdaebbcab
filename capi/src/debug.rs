//! `SetDebugOutputFunction`: Sockworks' log events, at the chosen detail level, handed to the application's function.
