//! The GNS3 3.0.6 controller's own web UI, in a real browser (headless
//! Chromium through WebDriver: Debian's `chromium` and `chromium-driver`,
//! `selenium` from PyPI in a venv under `target/`), showing a lab that runs
//! on nanolab: log in, open the project, the nodes shown as started, a
//! node's web console showing the VPCS prompt and pinging across the
//! switch, in the page and in a tab of its own. nanolab serves https here
//! and the controller's browser speaks plain http, so the web console's
//! websocket reaches nanolab as `ws://` on its https port (GNS3 3.0 takes
//! the browser's scheme), which nanolab serves beside TLS. The topology's
//! screenshot is left under `target/webui/`.

use crate::gns3::install;
use crate::gns3_3::{Controller, GNS3};
use crate::tap::Netns;
use crate::tls::Cert;
use crate::util::Server;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A venv with selenium, installed once per target directory.
pub fn selenium() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("selenium");
    let python = dir.join("bin/python");
    let ok = |py: &Path| {
        Command::new(py)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&python) {
        let _ = std::fs::remove_dir_all(&dir);
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status();
        assert!(made.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let out = Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "selenium"])
            .output()
            .expect("pip");
        assert!(
            out.status.success(),
            "pip install selenium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    python
}

#[test]
fn the_gns3_3_0_web_ui_shows_a_nanolab_lab_in_a_real_browser() {
    for program in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing (Debian: apt-get install chromium chromium-driver)"
        );
    }
    let python = selenium();
    let venv = install(GNS3);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("webui");
    let _ = std::fs::remove_dir_all(&out);
    let ns = Netns::new("gweb");
    ns.within(move || {
        let cert = Cert::new();
        let flags = cert.flags();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let nl = Server::start(&flags);
        let ctl = Controller::start_env(&venv, &[("SSL_CERT_FILE", &cert.cert)]);
        let compute = ctl.register_as("nanolab1", "https", "127.0.0.1", nl.addr.port());
        // Kept open while no client listens (the browser comes later).
        let p = ctl.ok(
            "POST",
            "/v3/projects",
            json!({"name": "weblab", "auto_close": false}),
        )["project_id"]
            .as_str()
            .unwrap()
            .to_string();
        let pc1 = ctl.pc(&p, "PC1", &compute, "10.0.0.1");
        let pc2 = ctl.pc(&p, "PC2", &compute, "10.0.0.2");
        let sw = ctl.node(&p, "SW1", "ethernet_switch", &compute, json!({}));
        // Apart on the map, for a right-click to find each.
        for (n, x, y) in [(&pc1, -250, 100), (&pc2, 250, 100), (&sw, 0, -100)] {
            let at = format!("/v3/projects/{p}/nodes/{n}");
            ctl.ok("PUT", &at, json!({"x": x, "y": y}));
        }
        ctl.link(&p, (&pc1, 0), (&sw, 0));
        ctl.link(&p, (&pc2, 0), (&sw, 1));
        ctl.ok(
            "POST",
            &format!("/v3/projects/{p}/nodes/start"),
            Value::Null,
        );
        for n in [&pc1, &pc2, &sw] {
            ctl.wait_status(&p, n, "started");
        }

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/webui/drive.py");
        let run = Command::new(&python)
            .arg(script)
            .args(["--url", &format!("http://{}", ctl.addr)])
            .args(["--project", &p, "--project-name", "weblab"])
            .args(["--nodes", &format!("PC1={pc1},PC2={pc2},SW1={sw}")])
            .args(["--console", "PC1", "--ping", "10.0.0.2"])
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run the selenium script");
        let said = format!(
            "{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            run.status.success(),
            "the web UI check failed:\n{said}\ncontroller log:\n{}\nnanolab log:\n{}",
            crate::gns3::tail(&ctl.log()),
            crate::gns3::tail(&nl.log())
        );
        let shot = std::fs::metadata(out.join("topology.png")).map_or(0, |m| m.len());
        assert!(
            shot > 10_000,
            "no screenshot of the topology ({shot} bytes)"
        );
        // The console websocket came as plain ws:// to the https port.
        assert!(
            nl.log().contains("is now a websocket (Console"),
            "no console websocket reached nanolab"
        );
        let r = ctl.req("DELETE", &format!("/v3/projects/{p}"), &Value::Null);
        assert!(r.status < 300, "{}", r.text);
    });
}
