//! `demo-client`: one connection carrying TOA, as a layer-4 proxy would
//! send it, to an unmodified server listening on the guest's tun address.
//! ci/demo runs it in the tests/vm guest before and after `toa-install`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use toa_install::peer::{toa_option, CloseMode, ConnectSpec, Peer, PeerConfig};

const LOCAL4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

pub struct DemoOpts {
    pub proxy: Ipv4Addr,
    pub client: SocketAddr,
    pub port: u16,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<DemoOpts, String> {
    let (mut proxy, mut client, mut port) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--proxy" => proxy = Some(value.parse().map_err(|_| "--proxy needs an IPv4 address")?),
            "--client" => client = Some(value.parse().map_err(|_| "--client needs IP:PORT")?),
            "--port" => port = Some(value.parse().map_err(|_| "--port needs a number")?),
            other => return Err(format!("unknown demo-client argument {other:?}")),
        }
    }
    Ok(DemoOpts {
        proxy: proxy.ok_or("--proxy is required")?,
        client: client.ok_or("--client is required")?,
        port: port.ok_or("--port is required")?,
    })
}

pub fn run(o: &DemoOpts) -> Result<(), String> {
    let _ = toa_install::peer::set_link_up("lo");
    let peer = Peer::open(&PeerConfig::new("toa0").ipv4(LOCAL4, 24)).map_err(|e| e.to_string())?;
    let spec = ConnectSpec::new(
        SocketAddr::new(IpAddr::V4(o.proxy), 0),
        SocketAddr::new(IpAddr::V4(LOCAL4), o.port),
    )
    .ack_options(toa_option(254, o.client))
    .payload(b"hello from behind the proxy\n".to_vec())
    .close(CloseMode::Fin)
    .timeout(Duration::from_secs(10));
    peer.connect(&spec).map(|_| ()).map_err(|e| e.to_string())
}
