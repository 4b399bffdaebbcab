//! Connection status changes delivered to the application's C callback from `RunCallbacks`.
