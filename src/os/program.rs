//! The VPCS program on disk: where it is and which dynamic loader it needs
//! (reads files; the pure ELF parsing lives in `lab::kinds::vpcs`).

use crate::error::ApiError;
use crate::lab::kinds::vpcs::parse_interp;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Find the program: the configured path, else `vpcs` on `PATH`. Missing or
/// not executable is a 409 naming the path and the fix.
pub fn resolve(
    configured: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ApiError> {
    let candidate = match configured {
        Some(p) => Some(p.to_path_buf()),
        None => path_var
            .map(std::env::split_paths)
            .and_then(|mut dirs| dirs.find_map(|d| Some(d.join("vpcs")).filter(|p| p.is_file()))),
    };
    let shown = candidate
        .as_ref()
        .map_or("vpcs (on PATH)".into(), |p| p.display().to_string());
    let executable = candidate
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    match candidate {
        Some(p) if executable => Ok(p),
        _ => Err(ApiError::conflict(format!(
            "VPCS program {shown} is missing or not executable: install it with 'apt-get install vpcs', \
             set --vpcs / [VPCS] vpcs_path, or run PCs without it: --pc-engine builtin"
        ))),
    }
}

/// The ELF interpreter (dynamic loader) a program needs, `None` for a static
/// binary. Errors when the file is not an ELF program (a script, say).
pub fn elf_interpreter(program: &Path) -> Result<Option<PathBuf>, String> {
    let bytes =
        std::fs::read(program).map_err(|e| format!("cannot read {}: {e}", program.display()))?;
    parse_interp(&bytes).map(|o| o.map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_a_409_with_the_fix() {
        let e = resolve(Some(Path::new("/nonexistent/vpcs")), None).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(
            e.to_string().contains("/nonexistent/vpcs")
                && e.to_string().contains("apt-get install vpcs")
                && e.to_string().contains("--pc-engine builtin")
        );
        assert!(resolve(None, Some(std::ffi::OsStr::new("/nonexistent"))).is_err());
        let plain = std::env::temp_dir().join(format!("nanolab-noexec-{}", std::process::id()));
        std::fs::write(&plain, b"").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(resolve(Some(&plain), None).is_err(), "not executable");
        let _ = std::fs::remove_file(plain);
    }

    #[test]
    fn interpreter_of_a_real_program() {
        let interp = elf_interpreter(Path::new("/bin/true")).unwrap();
        assert!(interp.unwrap().to_string_lossy().contains("ld-"));
    }
}
