//! What the tests of the `vsc-emulator` binary share: an issuer key and sample images in a
//! folder, the binary started on them, and a fake vpcd peer over TCP, so that no pcscd is
//! needed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vsc_core::card::CardState;
use vsc_core::crypto::MasterKey;
use vsc_core::fs::{EfBody, Fid, Node};
use vsc_core::image;
use vsc_core::issuer::IssuerKeyFile;
use vsc_core::security::PasswordRef;

pub const EMULATOR: &str = env!("CARGO_BIN_EXE_vsc-emulator");

/// How long a test waits for anything the emulator should do at once.
pub const LIMIT: Duration = Duration::from_secs(10);

pub const VERIFY_WRONG: &str = "0020000108393939393939FFFF";
pub const VERIFY_RIGHT: &str = "0020000108313233343536FFFF";
pub const SELECT_ADDRESS: &str = "00A4080C0460006001";
pub const READ_ADDRESS: &str = "00B0000004";

pub fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

/// An issuer key and sample images in a temporary folder.
pub struct Images {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub master: MasterKey,
}

impl Images {
    pub fn new() -> Images {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("issuer.key");
        let key = IssuerKeyFile::create_new(&key_file).unwrap();
        Images {
            master: key.master_key().clone(),
            key_file,
            dir,
        }
    }

    /// The sample card (user PIN 123456), its UID's last byte set to `n`, as `card-n.vsc`.
    pub fn sample(&self, n: u8) -> PathBuf {
        let mut state = vsc_core::sample::card().into_state();
        if let Some(ef) = state.fs.mf.child_ef_mut(Fid::EF_UID)
            && let EfBody::Transparent(uid) = &mut ef.body
        {
            uid[7] = n;
        }
        let path = self.dir.path().join(format!("card-{n}.vsc"));
        image::save(&path, &state, &self.master).unwrap();
        path
    }

    pub fn load(&self, path: &Path) -> Result<CardState, image::ImageError> {
        image::load(path, &self.master)
    }

    /// `vsc-emulator serve IMAGES --key-file … ARGS`, its standard error piped.
    pub fn serve(&self, images: &[&Path], args: &[&str]) -> Child {
        Command::new(EMULATOR)
            .arg("serve")
            .args(images)
            .arg("--key-file")
            .arg(&self.key_file)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub fn user_pin_tries(state: &CardState) -> u8 {
    state
        .passwords
        .get(PasswordRef::UserPin)
        .unwrap()
        .tries_left
}

/// The first 16 bytes of EF 6001 (the address, in DF.PRIVATE).
pub fn address_head(state: &CardState) -> [u8; 16] {
    let Some(Node::Df(private)) = state.fs.mf.child(Fid::DF_PRIVATE) else {
        panic!("no DF.PRIVATE")
    };
    let Some(ef) = private.child_ef(Fid::new(0x6001).unwrap()) else {
        panic!("no EF 6001")
    };
    let EfBody::Transparent(bytes) = &ef.body else {
        panic!("EF 6001 is not transparent")
    };
    bytes[..16].try_into().unwrap()
}

/// A listening socket standing in for vpcd on a free port of the loopback.
pub fn vpcd_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Two consecutive free ports (slot 0 and slot 1 of an emulator).
pub fn port_pair() -> (TcpListener, TcpListener, u16) {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = TcpListener::bind(("127.0.0.1", port.wrapping_add(1))) {
            return (first, second, port);
        }
    }
    panic!("no two consecutive free ports");
}

/// A port nobody listens on (bound and released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts the emulator's connection, waiting up to `LIMIT`.
pub fn accept(listener: &TcpListener) -> FakeVpcd {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return FakeVpcd::new(stream);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the emulator did not connect");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// Connects to an emulator listening at `addr` (reversed mode), retrying while it starts.
pub fn connect(addr: SocketAddr) -> FakeVpcd {
    let deadline = Instant::now() + LIMIT;
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return FakeVpcd::new(stream),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("nothing listens on {addr}: {error}"),
        }
    }
}

/// The vpcd end of a connection, blocking.
pub struct FakeVpcd(pub TcpStream);

impl FakeVpcd {
    pub fn new(stream: TcpStream) -> FakeVpcd {
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        FakeVpcd(stream)
    }

    pub fn send_body(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut frame = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.0.write_all(&frame)
    }

    pub fn receive(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0; 2];
        self.0.read_exact(&mut len)?;
        let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
        self.0.read_exact(&mut body)?;
        Ok(body)
    }

    pub fn exchange(&mut self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        self.send_body(body)?;
        self.receive()
    }

    /// An APDU in hex; the response in hex.
    pub fn apdu(&mut self, apdu: &str) -> String {
        hex::encode_upper(self.exchange(&hex(apdu)).unwrap())
    }

    /// What pcscd does when it sees a card: power on, then GET ATR.
    pub fn power_on(&mut self) -> Vec<u8> {
        self.send_body(&[0x01]).unwrap();
        self.exchange(&[0x04]).unwrap()
    }

    /// Closes the connection with a reset (RST) instead of a clean FIN: a broken connection.
    pub fn break_off(self) {
        socket2::SockRef::from(&self.0)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(self);
    }
}

/// The emulator's standard error so far, read in the background.
pub struct Stderr(std::sync::Arc<std::sync::Mutex<String>>);

impl Stderr {
    pub fn of(child: &mut Child) -> Stderr {
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Stderr(text)
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `needle` to appear; the text so far either way.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stops a child with SIGKILL and reaps it.
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}
