//! Tests of the table, conversions, store, options arrays and the exported calls. No
//! instance runs here (the C ABI's instance is another module's), so these are the
//! before-Init paths; each test uses its own option ids, since the store is process-wide.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use super::store::{self, Scope};
use super::table::{self, Support, TABLE};
use super::value::{Value, default_value, from_config};
use super::*;
use crate::types::*;

const NULL: *mut c_void = ptr::null_mut();

fn opt_i32(id: i32, v: i32) -> SteamNetworkingConfigValue_t {
    SteamNetworkingConfigValue_t {
        m_eValue: id,
        m_eDataType: k_ESteamNetworkingConfig_Int32,
        m_val: SteamNetworkingConfigValue_t_Value {
            m_int64: i64::from(v),
        },
    }
}

fn get_i32(id: i32, scope: i32, obj: isize) -> (i32, i32) {
    let mut out = 0i32;
    let mut cb = 4usize;
    let mut ty = 0;
    // SAFETY: a 4-byte buffer and valid out pointers.
    let r = unsafe {
        SteamAPI_ISteamNetworkingUtils_GetConfigValue(
            NULL,
            id,
            scope,
            obj,
            &mut ty,
            ptr::from_mut(&mut out).cast(),
            &mut cb,
        )
    };
    (r, out)
}

#[test]
fn the_table_is_sorted_and_every_header_value_is_in_it_under_its_header_name() {
    assert!(TABLE.windows(2).all(|w| w[0].id < w[1].id));
    let consts = include_str!("../types/consts.rs");
    let start = consts.find("// ESteamNetworkingConfigValue\n").unwrap();
    let end = consts
        .find("// ESteamNetworkingGetConfigValueResult")
        .unwrap();
    let mut in_header = 0;
    for line in consts[start..end]
        .lines()
        .filter(|l| l.starts_with("pub const"))
    {
        let Some(rest) = line.strip_prefix("pub const k_ESteamNetworkingConfig_") else {
            continue; // k_ESteamNetworkingConfigValue__Force32Bit
        };
        let name = rest.split(':').next().unwrap();
        let id: i32 = line
            .rsplit("= ")
            .next()
            .unwrap()
            .trim_end_matches(';')
            .parse()
            .unwrap_or(-1);
        if matches!(name, "Invalid" | "DELETED_EnumerateDevVars") {
            assert!(
                table::find(id).is_none(),
                "{name} is not registered, as in GNS"
            );
            continue;
        }
        in_header += 1;
        let e = table::find(id).unwrap_or_else(|| panic!("{name} ({id}) missing"));
        assert_eq!(e.name.to_str().unwrap(), name);
    }
    assert_eq!(
        TABLE.len(),
        in_header + 4,
        "the header's values and Sockworks' four"
    );
}

#[test]
fn get_config_value_info_names_types_and_scopes() {
    for (id, name, ty, scope) in [
        (
            24,
            "TimeoutInitial",
            k_ESteamNetworkingConfig_Int32,
            k_ESteamNetworkingConfig_Connection,
        ),
        (
            2,
            "FakePacketLoss_Send",
            k_ESteamNetworkingConfig_Float,
            k_ESteamNetworkingConfig_Global,
        ),
        (
            40,
            "ConnectionUserData",
            k_ESteamNetworkingConfig_Int64,
            k_ESteamNetworkingConfig_Connection,
        ),
        (
            103,
            "P2P_STUN_ServerList",
            k_ESteamNetworkingConfig_String,
            k_ESteamNetworkingConfig_Connection,
        ),
        (
            201,
            "Callback_ConnectionStatusChanged",
            k_ESteamNetworkingConfig_Ptr,
            k_ESteamNetworkingConfig_Connection,
        ),
        (
            sockworks::MAX_CONNECTIONS_ID,
            "MaxConnections",
            k_ESteamNetworkingConfig_Int32,
            k_ESteamNetworkingConfig_ListenSocket,
        ),
    ] {
        let (mut t, mut s) = (0, 0);
        // SAFETY: valid out pointers.
        let p =
            unsafe { SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo(NULL, id, &mut t, &mut s) };
        // SAFETY: a static NUL-terminated name.
        assert_eq!(unsafe { CStr::from_ptr(p) }.to_str().unwrap(), name);
        assert_eq!((t, s), (ty, scope), "{name}");
    }
    // SAFETY: null out pointers are allowed.
    unsafe {
        assert!(
            !SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo(
                NULL,
                24,
                ptr::null_mut(),
                ptr::null_mut()
            )
            .is_null()
        );
        assert!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo(
                NULL,
                35,
                ptr::null_mut(),
                ptr::null_mut()
            )
            .is_null()
        );
        assert!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValueInfo(
                NULL,
                0,
                ptr::null_mut(),
                ptr::null_mut()
            )
            .is_null()
        );
    }
}

#[test]
fn implemented_defaults_are_the_rust_api_defaults() {
    let c = sockworks::Config::defaults();
    for e in TABLE
        .iter()
        .filter(|e| e.support == Support::Implemented && !matches!(e.id, 201 | 202 | 207))
    {
        let api = c.get(e.id).and_then(|cv| from_config(&cv));
        assert_eq!(api, Some(default_value(e)), "{:?}", e.name);
    }
}

#[test]
fn iteration_visits_each_editable_value_once_in_order() {
    for dev in [false, true] {
        let mut seen = Vec::new();
        let mut cur =
            SteamAPI_ISteamNetworkingUtils_IterateGenericEditableConfigValues(NULL, 0, dev);
        while cur != 0 {
            seen.push(cur);
            cur = SteamAPI_ISteamNetworkingUtils_IterateGenericEditableConfigValues(NULL, cur, dev);
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "each once, in order");
        let expected: Vec<i32> = TABLE
            .iter()
            .filter(|e| e.data_type != k_ESteamNetworkingConfig_Ptr)
            .filter(|e| ![37, 38, 40].contains(&e.id))
            .filter(|e| dev || ![23, 34, 36].contains(&e.id))
            .map(|e| e.id)
            .collect();
        assert_eq!(seen, expected);
    }
    assert_eq!(
        SteamAPI_ISteamNetworkingUtils_IterateGenericEditableConfigValues(NULL, 12345, true),
        0
    );
}

#[test]
fn options_arrays_convert_skip_and_refuse_as_gns() {
    unsafe extern "C" fn cb(_: *mut SteamNetConnectionStatusChangedCallback_t) {}
    let stun = c"stun.example.com";
    let mut opts = vec![
        opt_i32(24, 1500),
        opt_i32(12, 99_999), // clamped to 20000
        opt_i32(13, 8),      // LogLevel_AckRTT: accepted, no effect
        SteamNetworkingConfigValue_t {
            m_eValue: 40,
            m_eDataType: k_ESteamNetworkingConfig_Int64,
            m_val: SteamNetworkingConfigValue_t_Value { m_int64: 1 << 40 },
        },
        SteamNetworkingConfigValue_t {
            m_eValue: 201,
            m_eDataType: k_ESteamNetworkingConfig_Ptr,
            m_val: SteamNetworkingConfigValue_t_Value {
                m_ptr: cb as *mut c_void,
            },
        },
        SteamNetworkingConfigValue_t {
            m_eValue: 103,
            m_eDataType: k_ESteamNetworkingConfig_String,
            m_val: SteamNetworkingConfigValue_t_Value {
                m_string: stun.as_ptr(),
            },
        },
        SteamNetworkingConfigValue_t {
            m_eValue: 25,
            m_eDataType: k_ESteamNetworkingConfig_Float,
            m_val: SteamNetworkingConfigValue_t_Value { m_float: 2999.6 },
        },
    ];
    // SAFETY: `opts.len()` valid options.
    let v = unsafe { values_from_options(opts.len() as i32, opts.as_ptr()) }.unwrap();
    let ids: Vec<i32> = v.iter().map(|c| c.id()).collect();
    assert_eq!(ids, [24, 12, 40, 201, 103, 25]);
    assert_eq!(from_config(&v[1]), Some(Value::I32(20_000)));
    assert_eq!(
        from_config(&v[4]),
        Some(Value::Str(stun.to_bytes().to_vec()))
    );
    assert_eq!(from_config(&v[5]), Some(Value::I32(3000)));

    let check = |o: SteamNetworkingConfigValue_t| {
        // SAFETY: one valid option.
        unsafe { values_from_options(1, &o) }.unwrap_err()
    };
    assert_eq!(
        check(opt_i32(4242, 1)),
        ConfigArrayError::Unknown { index: 0, id: 4242 }
    );
    assert_eq!(
        check(opt_i32(2, 1)),
        ConfigArrayError::WrongScope { index: 0, id: 2 }
    );
    assert_eq!(
        check(opt_i32(33, 1)),
        ConfigArrayError::WrongScope { index: 0, id: 33 }
    );
    let mut wrong = opt_i32(24, 0);
    wrong.m_eDataType = k_ESteamNetworkingConfig_Ptr;
    assert!(matches!(
        check(wrong),
        ConfigArrayError::WrongType { id: 24, .. }
    ));
    wrong.m_eDataType = 77;
    assert!(matches!(
        check(wrong),
        ConfigArrayError::WrongType {
            id: 24,
            data_type: 77,
            ..
        }
    ));
    opts.truncate(1);
    // SAFETY: null arrays and counts are what is tested; nothing is read.
    unsafe {
        assert_eq!(
            values_from_options(2, ptr::null()).unwrap_err(),
            ConfigArrayError::NullArray
        );
        assert_eq!(
            values_from_options(-1, opts.as_ptr()).unwrap_err(),
            ConfigArrayError::NegativeCount(-1)
        );
        assert!(values_from_options(0, ptr::null()).unwrap().is_empty());
    }
    assert!(!ConfigArrayError::NullArray.to_string().is_empty());
}

#[test]
fn global_set_before_init_reads_back_and_init_gets_it() {
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(
        NULL, 10, 100_000
    ));
    assert_eq!(
        get_i32(10, k_ESteamNetworkingConfig_Global, 0),
        (k_ESteamNetworkingGetConfigValue_OK, 100_000)
    );
    assert!(
        global_values()
            .iter()
            .any(|c| c.id() == 10 && from_config(c) == Some(Value::I32(100_000)))
    );
    // Out of range: clamped, as GNS.
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(
        NULL, 10, 1
    ));
    assert_eq!(get_i32(10, k_ESteamNetworkingConfig_Global, 0).1, 1024);
    // A float for an int32 option is rounded.
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueFloat(
        NULL, 4, 12.6
    ));
    assert_eq!(get_i32(4, k_ESteamNetworkingConfig_Global, 0).1, 13);
    // A null argument restores the default.
    // SAFETY: a null argument is the documented way to clear.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingUtils_SetConfigValue(
            NULL,
            4,
            k_ESteamNetworkingConfig_Global,
            0,
            k_ESteamNetworkingConfig_Int32,
            ptr::null(),
        )
    });
    assert_eq!(get_i32(4, k_ESteamNetworkingConfig_Global, 0).1, 0);
    // MTU_DataSize: read-only, derived.
    assert!(!SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(
        NULL, 33, 500
    ));
    assert_eq!(
        get_i32(33, k_ESteamNetworkingConfig_Global, 0),
        (k_ESteamNetworkingGetConfigValue_OK, 1200)
    );
    // Accepted with no effect: stored, read back; not handed to Init.
    assert!(SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueInt32(
        NULL, 41, 64
    ));
    assert_eq!(get_i32(41, k_ESteamNetworkingConfig_Global, 0).1, 64);
    assert!(!global_values().iter().any(|c| c.id() == 41));
}

#[test]
fn strings_report_buffer_too_small_with_the_size_needed() {
    let v = c"stun.example.com:3478";
    // SAFETY: a NUL-terminated string.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingUtils_SetGlobalConfigValueString(NULL, 103, v.as_ptr())
    });
    let need = v.to_bytes().len() + 1;
    let mut buf = [0 as c_char; 64];
    let mut cb = 4usize;
    let g = k_ESteamNetworkingConfig_Global;
    // SAFETY: `cb` bytes writable each time; a null buffer is allowed.
    unsafe {
        let r = SteamAPI_ISteamNetworkingUtils_GetConfigValue(
            NULL,
            103,
            g,
            0,
            ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut cb,
        );
        assert_eq!(
            (r, cb),
            (k_ESteamNetworkingGetConfigValue_BufferTooSmall, need)
        );
        assert_eq!(buf[0], 0, "nothing written");
        let r = SteamAPI_ISteamNetworkingUtils_GetConfigValue(
            NULL,
            103,
            g,
            0,
            ptr::null_mut(),
            NULL,
            &mut cb,
        );
        assert_eq!(r, k_ESteamNetworkingGetConfigValue_BufferTooSmall);
        cb = buf.len();
        let r = SteamAPI_ISteamNetworkingUtils_GetConfigValue(
            NULL,
            103,
            g,
            0,
            ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut cb,
        );
        assert_eq!((r, cb), (k_ESteamNetworkingGetConfigValue_OK, need));
        assert_eq!(CStr::from_ptr(buf.as_ptr()), v);
    }
}

#[test]
fn misuse_returns_failure_values() {
    let g = k_ESteamNetworkingConfig_Global;
    let c = k_ESteamNetworkingConfig_Connection;
    let mut out = 0i32;
    let mut cb = 4usize;
    let res = ptr::from_mut(&mut out).cast::<c_void>();
    // SAFETY: valid or null pointers, as each call allows.
    unsafe {
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValue(
                NULL,
                4242,
                g,
                0,
                ptr::null_mut(),
                res,
                &mut cb
            ),
            k_ESteamNetworkingGetConfigValue_BadValue
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValue(
                NULL,
                24,
                g,
                0,
                ptr::null_mut(),
                res,
                ptr::null_mut()
            ),
            k_ESteamNetworkingGetConfigValue_BufferTooSmall
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValue(
                NULL,
                24,
                c,
                77,
                ptr::null_mut(),
                res,
                &mut cb
            ),
            k_ESteamNetworkingGetConfigValue_BadScopeObj
        );
        assert_eq!(cb, 0);
        cb = 4;
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValue(
                NULL,
                2,
                c,
                77,
                ptr::null_mut(),
                res,
                &mut cb
            ),
            k_ESteamNetworkingGetConfigValue_BadScopeObj,
            "global only"
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetConfigValue(
                NULL,
                24,
                99,
                0,
                ptr::null_mut(),
                res,
                &mut cb
            ),
            k_ESteamNetworkingGetConfigValue_BadScopeObj,
            "no such scope"
        );
        assert!(!SteamAPI_ISteamNetworkingUtils_SetConfigValue(
            NULL,
            4242,
            g,
            0,
            k_ESteamNetworkingConfig_Int32,
            res
        ));
        assert!(
            !SteamAPI_ISteamNetworkingUtils_SetConfigValue(NULL, 24, g, 0, 77, res),
            "bad data type"
        );
        assert!(!SteamAPI_ISteamNetworkingUtils_SetConfigValue(
            NULL,
            24,
            g,
            0,
            k_ESteamNetworkingConfig_String,
            c"abc".as_ptr().cast()
        ));
        assert!(!SteamAPI_ISteamNetworkingUtils_SetConfigValueStruct(
            NULL,
            ptr::null(),
            g,
            0
        ));
    }
    assert!(
        !SteamAPI_ISteamNetworkingUtils_SetConnectionConfigValueInt32(NULL, 5, 24, 1000),
        "no instance, no connection"
    );
    assert!(!SteamAPI_ISteamNetworkingUtils_SetConnectionConfigValueFloat(NULL, 0, 24, 1.0));
}

#[test]
fn the_global_callback_is_kept_as_its_c_pointer() {
    unsafe extern "C" fn cb(_: *mut SteamNetConnectionStatusChangedCallback_t) {}
    assert!(
        SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetConnectionStatusChanged(
            NULL,
            Some(cb)
        )
    );
    assert!(
        SteamAPI_ISteamNetworkingUtils_SetGlobalCallback_SteamNetAuthenticationStatusChanged(
            NULL, None
        )
    );
    let mut p: *mut c_void = NULL;
    let mut size = size_of::<*mut c_void>();
    let mut ty = 0;
    // SAFETY: a pointer-sized buffer.
    let r = unsafe {
        SteamAPI_ISteamNetworkingUtils_GetConfigValue(
            NULL,
            201,
            k_ESteamNetworkingConfig_Global,
            0,
            &mut ty,
            ptr::from_mut(&mut p).cast(),
            &mut size,
        )
    };
    assert_eq!(
        (r, ty),
        (
            k_ESteamNetworkingGetConfigValue_OK,
            k_ESteamNetworkingConfig_Ptr
        )
    );
    assert_eq!(p as usize, cb as *const () as usize);
    assert!(global_values().iter().any(|c| c.id() == 201));
}

#[test]
fn the_store_forgets_a_closed_scope() {
    store::put(Scope::Listen(0xdead), 13, Value::I32(6));
    store::put(Scope::Conn(0xbeef), 13, Value::I32(7));
    forget(Scope::Listen(0xdead));
    assert_eq!(store::get(Scope::Listen(0xdead), 13), None);
    assert_eq!(store::get(Scope::Conn(0xbeef), 13), Some(Value::I32(7)));
    forget(Scope::Conn(0xbeef));
    assert_eq!(store::get(Scope::Conn(0xbeef), 13), None);
}
