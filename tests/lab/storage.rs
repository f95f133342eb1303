//! Object Storage and volumes of the lab. Object Storage: moto's S3 on 127.0.0.1 of the lab namespace
//! (plain http, for terrace itself as `TERRACE_S3_ENDPOINT`) and, for the hosts, a TLS front (stunnel)
//! on a lab address with a certificate from the lab's CA for `*.your-objectstorage.com`. Volumes: a
//! sparse file per volume id, seen by the host it is attached to through a loop device.

use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::sys::{run_ok, try_run, wait_for};

/// Where moto listens in the lab namespace.
pub(crate) const S3_PORT: u16 = 5000;
/// The names of Hetzner's Object Storage endpoints; the hosts resolve them to the TLS front.
pub(crate) const S3_NAMES: &[&str] = &[
    "your-objectstorage.com",
    "fsn1.your-objectstorage.com",
    "nbg1.your-objectstorage.com",
    "hel1.your-objectstorage.com",
    "ash.your-objectstorage.com",
    "hil.your-objectstorage.com",
];

/// The lab's certificate authority, trusted by every host.
pub(crate) struct Ca {
    pub(crate) cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

impl Ca {
    pub(crate) fn new(dir: &Path) -> Ca {
        let dir = dir.join("ca");
        fs::create_dir_all(&dir).expect("lab: CA folder");
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        run_ok(Command::new("openssl").args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3"]).args([
            "-subj",
            "/CN=terrace lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &cert.display().to_string(),
        ]));
        Ca { cert, key, dir }
    }

    /// A server certificate and key for these DNS names, signed by the CA.
    pub(crate) fn issue(&self, name: &str, dns: &[&str]) -> (PathBuf, PathBuf) {
        let (cert, key, csr, ext) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
            self.dir.join(format!("{name}.csr")),
            self.dir.join(format!("{name}.ext")),
        );
        let names: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
        fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
                names.join(",")
            ),
        )
        .expect("lab: extensions file");
        let path = |p: &Path| p.display().to_string();
        run_ok(Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes", "-subj"]).args([
            &format!("/CN={}", dns[0]),
            "-keyout",
            &path(&key),
            "-out",
            &path(&csr),
        ]));
        run_ok(Command::new("openssl").args(["x509", "-req", "-days", "3", "-CAcreateserial"]).args([
            "-in",
            &path(&csr),
            "-CA",
            &path(&self.cert),
            "-CAkey",
            &path(&self.key),
            "-extfile",
            &path(&ext),
            "-out",
            &path(&cert),
        ]));
        (cert, key)
    }
}

/// moto and its TLS front, stopped when dropped.
pub(crate) struct ObjectStorage {
    moto: Child,
    front: Child,
}

impl ObjectStorage {
    /// Starts moto on 127.0.0.1:[`S3_PORT`] and stunnel on `front_ip`:443 in front of it.
    pub(crate) fn start(dir: &Path, ca: &Ca, front_ip: Ipv4Addr) -> ObjectStorage {
        let log = fs::File::create(dir.join("moto.log")).expect("lab: moto's log");
        let moto = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &S3_PORT.to_string()])
            // Hetzner's endpoints are path-style: the bucket is never a part of the host name.
            .env("S3_IGNORE_SUBDOMAIN_BUCKETNAME", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("lab: log"))
            .stderr(log)
            .spawn()
            .expect("lab: cannot start moto_server (pip install moto[server]; see .ci/setup)");
        let (cert, key) = ca.issue("objectstorage", &{
            let mut names = vec!["*.your-objectstorage.com"];
            names.extend(S3_NAMES);
            names
        });
        // stunnel closes TLS with close_notify, which pgBackRest (OpenSSL 3) requires and moto's own
        // TLS (Werkzeug's development server) does not send.
        let config = dir.join("stunnel.conf");
        fs::write(
            &config,
            format!(
                "foreground = yes\npid =\noutput = {log}\n[s3]\naccept = {front_ip}:443\nconnect = 127.0.0.1:{S3_PORT}\n\
                 cert = {cert}\nkey = {key}\n",
                log = dir.join("stunnel.log").display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .expect("lab: stunnel.conf");
        let front = Command::new("stunnel4")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lab: cannot start stunnel4 (apt-get install stunnel4; see .ci/setup)");
        wait_for("moto_server to listen on 127.0.0.1:5000 (see moto.log)", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", S3_PORT)).ok()
        });
        // Asked without connecting, which would leave a failed handshake in stunnel's log.
        wait_for("stunnel to listen on the Object Storage address (see stunnel.log)", Duration::from_secs(30), || {
            let listening = try_run(Command::new("ss").args(["-Hltn", &format!("src {front_ip}:443")])).ok()?;
            (!listening.trim().is_empty()).then_some(())
        });
        ObjectStorage { moto, front }
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        for child in [&mut self.moto, &mut self.front] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A volume's data: a sparse file of its size, kept per volume id, so data survives detach and attach.
pub(crate) fn backing_file(dir: &Path, volume: u64, size_gb: u64, format: Option<&str>) -> Result<PathBuf, String> {
    let file = dir.join("volumes").join(format!("{volume}.img"));
    if !file.exists() {
        fs::create_dir_all(dir.join("volumes")).map_err(|e| format!("volumes folder: {e}"))?;
        let handle = fs::File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        handle.set_len(size_gb.max(1) * 1024 * 1024 * 1024).map_err(|e| format!("{}: {e}", file.display()))?;
        // A volume created with `format` comes with a filesystem, as Hetzner makes it.
        match format {
            None => {}
            Some("ext4") => drop(try_run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&file))?),
            Some("xfs") => drop(try_run(Command::new("mkfs.xfs").args(["-q", "-f"]).arg(&file))?),
            Some(other) => return Err(format!("volume {volume}: the lab cannot make a {other} filesystem")),
        }
    }
    Ok(file)
}

/// Attaches a backing file to a free loop device; its path (`/dev/loop3`).
pub(crate) fn attach_loop(file: &Path) -> Result<String, String> {
    Ok(try_run(Command::new("losetup").args(["--find", "--show"]).arg(file))?.trim().to_owned())
}

/// Detaches a loop device; the kernel lets go of it once nothing holds it open (a mount in a host
/// that is still going away).
pub(crate) fn detach_loop(device: &str) {
    let _ = Command::new("losetup").args(["--detach", device]).stderr(Stdio::null()).status();
}

/// Detaches every loop device whose backing file is under `dir`: the outer test's cleanup after a
/// lab that could not clean up itself.
pub(crate) fn detach_loops_under(dir: &Path) {
    let Ok(listing) = try_run(Command::new("losetup").args(["--list", "--noheadings", "--output", "NAME,BACK-FILE"]))
    else {
        return;
    };
    for line in listing.lines() {
        if let Some((device, file)) = line.trim().split_once(char::is_whitespace)
            && Path::new(file.trim().trim_end_matches(" (deleted)")).starts_with(dir)
        {
            detach_loop(device);
        }
    }
}

/// The major and minor numbers of a device node, for making it in a host's own /dev.
pub(crate) fn device_numbers(device: &str) -> Result<(u32, u32), String> {
    let out = try_run(Command::new("stat").args(["-c", "%t %T"]).arg(device))?;
    let mut parts = out.split_whitespace().map(|hex| u32::from_str_radix(hex, 16));
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(format!("stat of {device} gave {out:?}")),
    }
}
