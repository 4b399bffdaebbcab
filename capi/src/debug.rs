//! `SetDebugOutputFunction`: Sockworks' log events, at the chosen detail level, handed to the
//! application's function.
//!
//! Sockworks logs through `tracing`. The first `SetDebugOutputFunction` installs a small
//! process-wide subscriber that turns each event at or above the chosen level into one line
//! of text for the C function (GNS's levels: ERROR → Error, WARN → Warning, INFO → Msg,
//! DEBUG → Verbose, TRACE → Debug). If the host program already installed its own global
//! subscriber (a Rust host using `tracing-subscriber`), that one keeps the events and the C
//! function gets none.

use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::types::{
    ESteamNetworkingSocketsDebugOutputType, FSteamNetworkingSocketsDebugOutput,
    k_ESteamNetworkingSocketsDebugOutputType_Debug, k_ESteamNetworkingSocketsDebugOutputType_Error,
    k_ESteamNetworkingSocketsDebugOutputType_Msg, k_ESteamNetworkingSocketsDebugOutputType_Verbose,
    k_ESteamNetworkingSocketsDebugOutputType_Warning,
};

/// The detail level: events of a GNS type above it are dropped (0 = None: all dropped).
static LEVEL: AtomicI32 = AtomicI32::new(0);
/// The application's function, as an address (0 = none).
static FUNC: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// Sets the level and function (a null function or level None turns output off) and installs
/// the forwarding subscriber on first use.
pub fn set_output(
    level: ESteamNetworkingSocketsDebugOutputType,
    f: FSteamNetworkingSocketsDebugOutput,
) {
    let addr = f.map_or(0, |f| f as usize);
    FUNC.store(addr, Ordering::Release);
    LEVEL.store(if addr == 0 { 0 } else { level }, Ordering::Release);
    INSTALL.call_once(|| {
        // An error means the host installed its own subscriber first: keep it (see above).
        let _ = tracing::subscriber::set_global_default(Forward);
    });
}

/// GNS's output type of a `tracing` level.
pub fn gns_type(level: &Level) -> ESteamNetworkingSocketsDebugOutputType {
    match *level {
        Level::ERROR => k_ESteamNetworkingSocketsDebugOutputType_Error,
        Level::WARN => k_ESteamNetworkingSocketsDebugOutputType_Warning,
        Level::INFO => k_ESteamNetworkingSocketsDebugOutputType_Msg,
        Level::DEBUG => k_ESteamNetworkingSocketsDebugOutputType_Verbose,
        _ => k_ESteamNetworkingSocketsDebugOutputType_Debug,
    }
}

/// The event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

/// Forwards events to the C function; spans are not tracked.
struct Forward;

impl Subscriber for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level changes at run time: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.is_event()
            && FUNC.load(Ordering::Acquire) != 0
            && gns_type(m.level()) <= LEVEL.load(Ordering::Acquire)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let addr = FUNC.load(Ordering::Acquire);
        if addr == 0 {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let line = format!("{}{}", text.message, text.fields).replace('\0', " ");
        let Ok(line) = CString::new(line) else {
            return;
        };
        // SAFETY: `addr` is the non-null function the application passed to
        // SetDebugOutputFunction, of exactly this type.
        let f = unsafe {
            std::mem::transmute::<
                usize,
                unsafe extern "C" fn(
                    ESteamNetworkingSocketsDebugOutputType,
                    *const std::ffi::c_char,
                ),
            >(addr)
        };
        let kind = gns_type(event.metadata().level());
        // SAFETY: a valid NUL-terminated string that outlives the call.
        unsafe { f(kind, line.as_ptr()) };
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, c_char};
    use std::sync::Mutex;

    use super::*;

    static SEEN: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn record(kind: i32, text: *const c_char) {
        // SAFETY: the subscriber passes a valid NUL-terminated string.
        let s = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        SEEN.lock().unwrap().push((kind, s));
    }

    fn seen(tag: &str) -> Vec<(i32, String)> {
        let v = SEEN.lock().unwrap();
        v.iter().filter(|(_, s)| s.contains(tag)).cloned().collect()
    }

    #[test]
    fn events_at_or_above_the_level_reach_the_c_function() {
        set_output(k_ESteamNetworkingSocketsDebugOutputType_Msg, Some(record));
        tracing::warn!(peer = 7, "dbgtest-warn {}", 1);
        tracing::info!("dbgtest-info");
        tracing::debug!("dbgtest-debug");
        assert_eq!(
            seen("dbgtest-warn"),
            vec![(
                k_ESteamNetworkingSocketsDebugOutputType_Warning,
                "dbgtest-warn 1 peer=7".into()
            )]
        );
        assert_eq!(seen("dbgtest-info").len(), 1);
        assert!(seen("dbgtest-debug").is_empty(), "below the level");

        set_output(k_ESteamNetworkingSocketsDebugOutputType_Msg, None);
        tracing::error!("dbgtest-off");
        assert!(seen("dbgtest-off").is_empty(), "no function, no output");
    }
}
