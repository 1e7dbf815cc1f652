//! The promises of the crate docs, each checked in a folder of its own
//! under the system's temporary folder (special files included: the tests
//! make their own FIFO, socket and, as root, device node there).

use super::*;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

/// A fresh, empty folder for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("files-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_file_is_written_then_replaced_and_no_temporary_is_left() {
    let dir = Scratch::new("replace");
    let path = dir.0.join("out.txt");
    write_atomically(&path, b"first").unwrap();
    write_atomically(&path, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    assert_eq!(dir.names(), ["out.txt"]);
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = Scratch::new("injected");
    let path = dir.0.join("weights.bin");
    write_atomically(&path, b"good").unwrap();
    let err = write_with(&path, |file| {
        file.write_all(b"half of the new")?;
        Err(io::Error::other("disk full (injected)"))
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("weights.bin") && message.contains("injected"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"good");
    assert_eq!(dir.names(), ["weights.bin"]);
    // The same when there was no file before: nothing at all is left.
    let fresh = dir.0.join("fresh.bin");
    assert!(write_with(&fresh, |_| Err(io::Error::other("injected"))).is_err());
    assert_eq!(dir.names(), ["weights.bin"]);
}

#[test]
fn bad_paths_are_named() {
    let dir = Scratch::new("bad");
    let missing = dir.0.join("no-such-folder").join("x.txt");
    let e = write_atomically(&missing, b"x").unwrap_err().to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    let e = write_atomically(Path::new("/"), b"x").unwrap_err();
    assert!(matches!(e, WriteError::NoFileName { .. }), "{e}");
    let e = write_atomically(&dir.0, b"x").unwrap_err();
    assert!(e.to_string().contains("a folder"), "{e}");
    assert!(dir.names().is_empty());
}

#[test]
fn a_symbolic_link_stays_and_its_target_is_replaced() {
    let dir = Scratch::new("symlink");
    let real = dir.0.join("real.txt");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.0.join("link.txt");
    std::os::unix::fs::symlink("real.txt", &link).unwrap();
    write_atomically(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), b"new");
    // A dangling link: its target is created.
    let dangling = dir.0.join("dangling");
    std::os::unix::fs::symlink("made.txt", &dangling).unwrap();
    write_atomically(&dangling, b"made").unwrap();
    assert_eq!(std::fs::read(dir.0.join("made.txt")).unwrap(), b"made");
    // A circle of links is an error, not a hang.
    std::os::unix::fs::symlink("b", dir.0.join("a")).unwrap();
    std::os::unix::fs::symlink("a", dir.0.join("b")).unwrap();
    let e = write_atomically(&dir.0.join("a"), b"x").unwrap_err();
    assert!(matches!(e, WriteError::TooManyLinks { .. }), "{e}");
    assert_eq!(
        dir.names(),
        ["a", "b", "dangling", "link.txt", "made.txt", "real.txt"]
    );
}

#[test]
fn a_replaced_file_keeps_its_permissions() {
    let dir = Scratch::new("mode");
    for mode in [0o640, 0o444, 0o755] {
        let path = dir.0.join(format!("f{mode:o}"));
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, mode, "mode of {}", path.display());
    }
}

#[test]
fn a_fifo_is_written_into_not_replaced() {
    let dir = Scratch::new("fifo");
    let fifo = dir.0.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("skipped: mkfifo is not available here");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    write_atomically(&fifo, b"through the pipe").unwrap();
    assert_eq!(reader.join().unwrap(), b"through the pipe");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(dir.names(), ["pipe"]);
}

#[test]
fn a_character_device_is_written_into_not_replaced() {
    let dir = Scratch::new("device");
    let null = dir.0.join("null");
    // Our own node with /dev/null's numbers (1, 3), in our own folder:
    // making one needs root, so elsewhere the test says it is skipped.
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("skipped: making a device node needs root");
        return;
    }
    write_atomically(&null, b"discarded").unwrap();
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "the device was replaced: {kind:?}");
    assert_eq!(dir.names(), ["null"]);
}

#[test]
fn a_socket_is_refused() {
    let dir = Scratch::new("socket");
    let path = dir.0.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let e = write_atomically(&path, b"x").unwrap_err();
    assert!(e.to_string().contains("a socket"), "{e}");
    assert_eq!(dir.names(), ["sock"]);
}

#[test]
fn a_name_near_the_length_limit_works() {
    let dir = Scratch::new("long");
    let name = format!("{}.npy", "f".repeat(246));
    assert_eq!(name.len(), 250);
    let path = dir.0.join(&name);
    write_atomically(&path, b"long").unwrap();
    write_atomically(&path, b"longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"longer");
    assert_eq!(dir.names(), [name]);
}

#[test]
fn concurrent_writers_leave_one_complete_file() {
    let dir = Scratch::new("race");
    let path = dir.0.join("shared.txt");
    let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 10_000]).collect();
    std::thread::scope(|s| {
        for c in &contents {
            let path = &path;
            s.spawn(move || {
                for _ in 0..10 {
                    write_atomically(path, c).unwrap();
                }
            });
        }
    });
    let got = std::fs::read(&path).unwrap();
    assert!(contents.contains(&got), "a mix of writers' bytes");
    assert_eq!(dir.names(), ["shared.txt"]);
}
