//! Route templates and matching (no I/O, no allocation per request).
//!
//! A path is split on `/` and compared with each template's segments;
//! `{...}` segments capture. A matched template with a method it does not
//! serve is a 405, which a router keyed on "METHOD /path" could not tell.

use crate::proto::http::parse::Method;

/// Every route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/v1/version`
    Version,
    /// `/v1/interfaces`
    Interfaces,
    /// `/v1/qemu/binaries`
    QemuBinaries,
    /// `/v1/projects/{project_id}/qemu/vms`
    QemuVms,
    /// `/v1/projects/{project_id}/qemu/vms/{vm_id}`
    QemuVm,
    /// `.../qemu/vms/{vm_id}/start`
    QemuStart,
    /// `.../qemu/vms/{vm_id}/stop`
    QemuStop,
    /// `.../qemu/vms/{vm_id}/suspend`
    QemuSuspend,
    /// `.../qemu/vms/{vm_id}/resume`
    QemuResume,
    /// `.../qemu/vms/{vm_id}/reload`
    QemuReload,
    /// `.../qemu/vms/{vm_id}/adapters/{a}/ports/{p}/nio`
    QemuNio,
    /// `.../qemu/vms/{vm_id}/adapters/{a}/ports/{p}/start_capture` (nanolab's)
    QemuStartCapture,
    /// `.../qemu/vms/{vm_id}/adapters/{a}/ports/{p}/stop_capture` (nanolab's)
    QemuStopCapture,
    /// `/v1/config/reload`
    ConfigReload,
    /// `/v1/server/shutdown`
    Shutdown,
    /// `/v1/projects`
    Projects,
    /// `/v1/projects/{project_id}`
    Project,
    /// `/v1/projects/{project_id}/commit`
    ProjectCommit,
    /// `/v1/projects/{project_id}/close`
    ProjectClose,
    /// `/v1/projects/{project_id}/ports/udp`
    UdpPort,
    /// `/v1/projects/{project_id}/vpcs/vms`
    Vms,
    /// `/v1/projects/{project_id}/dynamips/devices`
    Devices,
    /// `/v1/projects/{project_id}/dynamips/devices/{device_id}`
    Device,
    /// `.../devices/{device_id}/ports/{port_number:\d+}/nio`
    DeviceNio,
    /// `.../vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/start_capture`
    VmStartCapture,
    /// `.../vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/stop_capture`
    VmStopCapture,
    /// `.../vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/pcap`
    VmPcap,
    /// `.../devices/{device_id}/ports/{port_number:\d+}/pcap`
    DevicePcap,
    /// `.../devices/{device_id}/ports/{port_number:\d+}/start_capture`
    DeviceStartCapture,
    /// `.../devices/{device_id}/ports/{port_number:\d+}/stop_capture`
    DeviceStopCapture,
    /// `/v1/projects/{project_id}/vpcs/vms/{vm_id}`
    Vm,
    /// `.../start`
    VmStart,
    /// `.../stop`
    VmStop,
    /// `.../reload`
    VmReload,
    /// `.../adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio`
    VmNio,
}

use Method::{Delete, Get, Post, Put};

/// (route, template, methods served)
const TABLE: &[(Route, &str, &[Method])] = &[
    (Route::Version, "/v1/version", &[Get, Post]),
    (Route::Interfaces, "/v1/interfaces", &[Get]),
    (Route::QemuBinaries, "/v1/qemu/binaries", &[Get]),
    (
        Route::QemuVms,
        r"/v1/projects/{project_id}/qemu/vms",
        &[Post],
    ),
    (
        Route::QemuVm,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}",
        &[Get, Put, Delete],
    ),
    (
        Route::QemuStart,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/start",
        &[Post],
    ),
    (
        Route::QemuStop,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/stop",
        &[Post],
    ),
    (
        Route::QemuSuspend,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/suspend",
        &[Post],
    ),
    (
        Route::QemuResume,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/resume",
        &[Post],
    ),
    (
        Route::QemuReload,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/reload",
        &[Post],
    ),
    (
        Route::QemuNio,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio",
        &[Post, Delete],
    ),
    (
        Route::QemuStartCapture,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/start_capture",
        &[Post],
    ),
    (
        Route::QemuStopCapture,
        r"/v1/projects/{project_id}/qemu/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/stop_capture",
        &[Post],
    ),
    (Route::ConfigReload, "/v1/config/reload", &[Post]),
    (Route::Shutdown, "/v1/server/shutdown", &[Post]),
    (Route::Projects, "/v1/projects", &[Post]),
    (
        Route::Project,
        "/v1/projects/{project_id}",
        &[Get, Put, Delete],
    ),
    (
        Route::ProjectCommit,
        "/v1/projects/{project_id}/commit",
        &[Post],
    ),
    (
        Route::ProjectClose,
        "/v1/projects/{project_id}/close",
        &[Post],
    ),
    (
        Route::UdpPort,
        "/v1/projects/{project_id}/ports/udp",
        &[Post],
    ),
    (Route::Vms, "/v1/projects/{project_id}/vpcs/vms", &[Post]),
    (
        Route::Devices,
        "/v1/projects/{project_id}/dynamips/devices",
        &[Post],
    ),
    (
        Route::Device,
        "/v1/projects/{project_id}/dynamips/devices/{device_id}",
        &[Get, Put, Delete],
    ),
    (
        Route::VmStartCapture,
        r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/start_capture",
        &[Post],
    ),
    (
        Route::VmStopCapture,
        r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/stop_capture",
        &[Post],
    ),
    (
        Route::VmPcap,
        r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/pcap",
        &[Get],
    ),
    (
        Route::DevicePcap,
        r"/v1/projects/{project_id}/dynamips/devices/{device_id}/ports/{port_number:\d+}/pcap",
        &[Get],
    ),
    (
        Route::DeviceStartCapture,
        r"/v1/projects/{project_id}/dynamips/devices/{device_id}/ports/{port_number:\d+}/start_capture",
        &[Post],
    ),
    (
        Route::DeviceStopCapture,
        r"/v1/projects/{project_id}/dynamips/devices/{device_id}/ports/{port_number:\d+}/stop_capture",
        &[Post],
    ),
    (
        Route::DeviceNio,
        r"/v1/projects/{project_id}/dynamips/devices/{device_id}/ports/{port_number:\d+}/nio",
        &[Post, Delete],
    ),
    (
        Route::Vm,
        "/v1/projects/{project_id}/vpcs/vms/{vm_id}",
        &[Get, Put, Delete],
    ),
    (
        Route::VmStart,
        "/v1/projects/{project_id}/vpcs/vms/{vm_id}/start",
        &[Post],
    ),
    (
        Route::VmStop,
        "/v1/projects/{project_id}/vpcs/vms/{vm_id}/stop",
        &[Post],
    ),
    (
        Route::VmReload,
        "/v1/projects/{project_id}/vpcs/vms/{vm_id}/reload",
        &[Post],
    ),
    (
        Route::VmNio,
        r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio",
        &[Post, Delete],
    ),
];

/// How many `{...}` segments a template may capture.
pub const MAX_PARAMS: usize = 5;

/// A route table: (route, template, methods served), first match wins.
pub type Table<R> = [(R, &'static str, &'static [Method])];

/// A matched path: the route and up to [`MAX_PARAMS`] captured segments,
/// in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'a, R = Route> {
    /// The route.
    pub route: R,
    /// The route template, for `X-Route`.
    pub template: &'static str,
    /// Captured `{...}` segments in template order.
    pub params: [&'a str; MAX_PARAMS],
    /// Whether the template serves the request's method.
    pub method_allowed: bool,
    /// The methods the template serves.
    pub methods: &'static [Method],
}

impl<'a> Matched<'a> {
    /// `{project_id}`
    pub fn project(&self) -> &'a str {
        self.params[0]
    }
    /// `{vm_id}`
    pub fn vm(&self) -> &'a str {
        self.params[1]
    }
    /// `{adapter_number}`
    pub fn adapter(&self) -> &'a str {
        self.params[2]
    }
    /// `{port_number}`
    pub fn port(&self) -> &'a str {
        self.params[3]
    }
}

/// Find the `/v1` route for `path` (a trailing slash is tolerated).
pub fn route<'a>(method: &Method, path: &'a str) -> Option<Matched<'a>> {
    route_in(TABLE, method, path)
}

/// Find the route for `path` in `table` (a trailing slash is tolerated).
pub fn route_in<'a, R: Copy>(
    table: &'static Table<R>,
    method: &Method,
    path: &'a str,
) -> Option<Matched<'a, R>> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    table.iter().find_map(|(route, template, methods)| {
        let params = match_template(template, path)?;
        Some(Matched {
            route: *route,
            template,
            params,
            method_allowed: methods.contains(method),
            methods,
        })
    })
}

/// Match `path` against `template`. `{name:\d+}` takes digits only;
/// `{name:.+}`, last in a template, takes the rest of the path, slashes
/// included.
fn match_template<'a>(template: &str, path: &'a str) -> Option<[&'a str; MAX_PARAMS]> {
    let mut params = [""; MAX_PARAMS];
    let mut n = 0;
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut rest = path;
    loop {
        let (ts, ps) = (t.next(), p.next());
        if let (Some(ts), Some(ps)) = (ts, ps)
            && ts.ends_with(":.+}")
        {
            let start = path.len() - rest.len();
            let tail = &path[start..];
            if ps.is_empty() || n == params.len() {
                return None;
            }
            params[n] = tail;
            return Some(params);
        }
        if let Some(ps) = ps {
            rest = rest.get(ps.len() + 1..).unwrap_or("");
        }
        match (ts, ps) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with('{') => {
                // `{name:\d+}` (1.3.13's notation) takes digits only.
                let digits = ts.ends_with(r":\d+}");
                if ps.is_empty()
                    || n == params.len()
                    || (digits && !ps.bytes().all(|b| b.is_ascii_digit()))
                {
                    return None;
                }
                params[n] = ps;
                n += 1;
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! routes {
        ($($method:expr, $path:expr => $route:expr, $allowed:expr;)*) => {$(
            let m = route(&$method, $path).unwrap_or_else(|| panic!("{} did not match", $path));
            assert_eq!((m.route, m.method_allowed), ($route, $allowed), "{}", $path);
        )*};
    }

    #[test]
    fn table() {
        routes! {
            Get, "/v1/version" => Route::Version, true;
            Post, "/v1/version/" => Route::Version, true;
            Delete, "/v1/version" => Route::Version, false;
            Post, "/v1/projects" => Route::Projects, true;
            Get, "/v1/projects" => Route::Projects, false;
            Get, "/v1/projects/abc" => Route::Project, true;
            Post, "/v1/projects/abc/ports/udp" => Route::UdpPort, true;
            Post, "/v1/projects/p/vpcs/vms/v/start" => Route::VmStart, true;
            Delete, "/v1/projects/p/vpcs/vms/v/adapters/0/ports/0/nio" => Route::VmNio, true;
        }
    }

    #[test]
    fn captures_in_order() {
        let m = route(&Post, "/v1/projects/p/vpcs/vms/v/adapters/1/ports/2/nio").unwrap();
        assert_eq!(
            (m.project(), m.vm(), m.adapter(), m.port()),
            ("p", "v", "1", "2")
        );
        assert_eq!(
            m.template,
            r"/v1/projects/{project_id}/vpcs/vms/{vm_id}/adapters/{adapter_number:\d+}/ports/{port_number:\d+}/nio"
        );
        assert!(route(&Post, "/v1/projects/p/vpcs/vms/v/adapters/x/ports/0/nio").is_none());
        assert!(route(&Post, "/v1/projects/p/vpcs/vms/v/adapters/0/ports/-1/nio").is_none());
    }

    #[test]
    fn unknown_paths_do_not_match() {
        for p in [
            "/",
            "/v1",
            "/v2/version",
            "/v1/projects//commit",
            "/v1/projects/a/b",
            "/v1/versionx",
        ] {
            assert!(route(&Get, p).is_none(), "{p}");
        }
    }
}
