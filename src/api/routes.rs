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
    let segments = Segments::of(path);
    table.iter().find_map(|(route, template, methods)| {
        let params = segments.fit(template)?;
        Some(Matched {
            route: *route,
            template,
            params,
            method_allowed: methods.contains(method),
            methods,
        })
    })
}

/// The most segments a path is split into; a longer path matches only a
/// template that ends in a `{name:.+}` taking the rest.
const MAX_SEGMENTS: usize = 16;

/// A path split on `/` once, for every template of a table to be tried
/// against (splitting each time cost more than the rest of a request).
struct Segments<'a> {
    path: &'a str,
    /// Where each segment starts in `path`, and where it ends.
    bounds: [(usize, usize); MAX_SEGMENTS],
    /// Segments split (at most [`MAX_SEGMENTS`]).
    n: usize,
    /// More segments follow the last one split.
    more: bool,
}

impl<'a> Segments<'a> {
    fn of(path: &'a str) -> Self {
        let mut s = Segments {
            path,
            bounds: [(0, 0); MAX_SEGMENTS],
            n: 0,
            more: false,
        };
        let mut start = 0;
        for (i, b) in path.bytes().enumerate() {
            if b == b'/' {
                if s.n == MAX_SEGMENTS {
                    s.more = true;
                    return s;
                }
                s.bounds[s.n] = (start, i);
                s.n += 1;
                start = i + 1;
            }
        }
        if s.n == MAX_SEGMENTS {
            s.more = true;
        } else {
            s.bounds[s.n] = (start, path.len());
            s.n += 1;
        }
        s
    }

    fn get(&self, i: usize) -> &'a str {
        let (from, to) = self.bounds[i];
        &self.path[from..to]
    }

    /// Match against `template`. `{name:\d+}` takes digits only;
    /// `{name:.+}`, last in a template, takes the rest of the path, slashes
    /// included.
    fn fit(&self, template: &str) -> Option<[&'a str; MAX_PARAMS]> {
        // Most templates of a table share their beginning and differ at
        // the end: compare a literal last segment first.
        let t = template.as_bytes();
        let last = t
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(t, |at| &t[at + 1..]);
        if last.first() != Some(&b'{') && (self.more || self.get(self.n - 1).as_bytes() != last) {
            return None;
        }
        let mut params = [""; MAX_PARAMS];
        let mut n = 0;
        let mut i = 0;
        for ts in template.as_bytes().split(|&b| b == b'/') {
            if i == self.n {
                return None; // the template is longer
            }
            let ps = self.get(i);
            if ts.first() == Some(&b'{') {
                if ps.is_empty() || n == params.len() {
                    return None;
                }
                if ts.ends_with(b":.+}") {
                    params[n] = &self.path[self.bounds[i].0..];
                    return Some(params);
                }
                // `{name:\d+}` (1.3.13's notation) takes digits only.
                if ts.ends_with(br":\d+}") && !ps.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                params[n] = ps;
                n += 1;
            } else if ts != ps.as_bytes() {
                return None;
            }
            i += 1;
        }
        (i == self.n && !self.more).then_some(params)
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
    fn a_tail_takes_the_rest_however_deep() {
        const T: &Table<u8> = &[
            (1, "/a/{n:\\d+}", &[Get]),
            (2, "/f/{p}/files/{path:.+}", &[Get]),
            (
                3,
                "/x/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}",
                &[Get],
            ),
        ];
        let deep = format!("/f/p/files/{}", ["d"; 30].join("/"));
        let m = route_in(T, &Get, &deep).unwrap();
        assert_eq!((m.route, m.params[0]), (2, "p"));
        assert_eq!(m.params[1], &deep["/f/p/files/".len()..]);
        assert!(route_in(T, &Get, "/f/p/files/").is_none());
        assert!(route_in(T, &Get, "/f/p/files").is_none());
        assert_eq!(route_in(T, &Get, "/a/12").unwrap().params[0], "12");
        assert!(route_in(T, &Get, "/a/1x").is_none());
        assert!(route_in(T, &Get, "/a/12/more").is_none());
        // Sixteen segments fill the split; a seventeenth is one too many.
        let sixteen = format!("/x/{}", ["s"; 14].join("/"));
        assert!(route_in(T, &Get, &sixteen).is_none(), "five params at most");
        let seventeen = format!("{sixteen}/s");
        assert!(route_in(T, &Get, &seventeen).is_none());
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
