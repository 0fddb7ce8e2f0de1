//! A wall clock the tests can step: libfaketime (Debian's `faketime`)
//! preloaded into `teal daemon`, reading its offset from a file the test
//! rewrites. The monotonic clock is left alone, as an NTP step or
//! `date -s` leaves it.

use std::path::{Path, PathBuf};

/// Debian's libfaketime, or a failure that says how to get it.
pub fn libfaketime_or_fail() -> PathBuf {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1");
    assert!(
        lib.exists(),
        "this test steps teal's clock with libfaketime: `apt-get install -y faketime` (`.ci/run` does this)"
    );
    lib.to_path_buf()
}

/// The offset file of one faked clock.
pub struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    /// A clock at the real time, its offset file in `dir`.
    pub fn new(dir: &Path) -> FakeClock {
        let clock = FakeClock {
            file: dir.join("faketime.offset"),
        };
        clock.set("+0");
        clock
    }

    /// The environment that puts `teal` on this clock, and only teal: the
    /// proxies and git it starts inherit the environment but keep the real
    /// clock (the fault is aimed at teal's own timers; HAProxy on a clock
    /// stepped an hour failed a few requests right after the step, which
    /// is HAProxy's matter). The offset file is read again at most every
    /// second.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", libfaketime_or_fail().display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("FAKETIME_CACHE_DURATION", "1".into()),
            ("FAKETIME_ONLY_CMDS", "teal".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Sets the offset from the real time, in libfaketime's terms (`+1h`).
    pub fn set(&self, offset: &str) {
        std::fs::write(&self.file, format!("{offset}\n")).unwrap();
    }
}
