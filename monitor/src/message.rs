//! The `HatObserver` messages between a component and its local Monitor Server
//! (hat-monitor 0.8 `sbs_repo.json`, module `HatObserver`), as chatter `Data.data`.
//!
//! ```text
//! MsgClient     = Record { name: String, group: String, data: String, blessingRes: BlessingRes }
//! MsgServer     = Record { cid: Integer, mid: Integer, components: Array(ComponentInfo) }
//! MsgClose      = None
//! ComponentInfo = Record { cid: Integer, mid: Integer, name: Optional(String),
//!                          group: Optional(String), data: String, rank: Integer,
//!                          blessingReq: BlessingReq, blessingRes: BlessingRes }
//! BlessingReq   = Record { token: Optional(Integer), timestamp: Optional(Float) }
//! BlessingRes   = Record { token: Optional(Integer), ready: Boolean }
//! ```
//!
//! A Record is its entries one after another; an Optional is the Choice `none` (0) or
//! `value` (1) followed by the value; `data` is JSON text (hat's `json.encode`).
//! Pure byte code: no sockets.

use gateway_eventer::sbs::{Reader, SbsError, Writer};

/// `Data.type` of a component's message to its Monitor Server.
pub const MSG_CLIENT_TYPE: &str = "HatObserver.MsgClient";
/// `Data.type` of the Monitor Server's state message.
pub const MSG_SERVER_TYPE: &str = "HatObserver.MsgServer";
/// `Data.type` of the Monitor Server's close request.
pub const MSG_CLOSE_TYPE: &str = "HatObserver.MsgClose";

/// The master's blessing request for one component.
#[derive(Debug, Clone, PartialEq)]
pub struct BlessingReq {
    /// Blessing token; `None` when the component is not blessed.
    pub token: Option<i64>,
    /// When the token was issued (seconds since the epoch), if it was.
    pub timestamp: Option<f64>,
}

/// A component's blessing response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlessingRes {
    /// The request token the component accepts; `None` while it does not work.
    pub token: Option<i64>,
    /// The component is ready to work.
    pub ready: bool,
}

impl BlessingRes {
    /// What a component sends first: no token, not ready.
    pub const INITIAL: BlessingRes = BlessingRes {
        token: None,
        ready: false,
    };
}

/// One component as the Monitor Server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentInfo {
    /// Component id, unique within its Monitor Server.
    pub cid: i64,
    /// Id of the Monitor Server the component is connected to.
    pub mid: i64,
    /// Component name (`None` until its first `MsgClient`).
    pub name: Option<String>,
    /// Component group (`None` until its first `MsgClient`).
    pub group: Option<String>,
    /// The component's own data, decoded from its JSON text.
    pub data: serde_json::Value,
    /// Rank (lower is preferred by BLESS_ONE).
    pub rank: i64,
    /// The master's blessing request.
    pub blessing_req: BlessingReq,
    /// The component's blessing response.
    pub blessing_res: BlessingRes,
}

impl ComponentInfo {
    /// True when the component is blessed and has accepted the blessing (hat-event's
    /// `_active_server_filter`): a request token equal to the response token.
    pub fn is_active(&self) -> bool {
        self.blessing_req.token.is_some() && self.blessing_req.token == self.blessing_res.token
    }
}

/// A component's message: who it is and its blessing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgClient {
    /// Component name.
    pub name: String,
    /// Component group.
    pub group: String,
    /// The component's data as JSON text (other components read it).
    pub data: String,
    /// The blessing response.
    pub blessing_res: BlessingRes,
}

/// The Monitor Server's state message.
#[derive(Debug, Clone, PartialEq)]
pub struct MsgServer {
    /// This component's id.
    pub cid: i64,
    /// This Monitor Server's id.
    pub mid: i64,
    /// Every component the master knows of (the global component list).
    pub components: Vec<ComponentInfo>,
}

impl MsgServer {
    /// This component's own entry (`cid` and `mid` equal), if the list has it.
    pub fn own_info(&self) -> Option<&ComponentInfo> {
        self.components
            .iter()
            .find(|i| i.cid == self.cid && i.mid == self.mid)
    }
}

/// What a Monitor Server sends a component.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    /// `HatObserver.MsgServer`.
    Server(MsgServer),
    /// `HatObserver.MsgClose`: the server closes the connection.
    Close,
}

/// Errors decoding a Monitor Server's message. Each one ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The `Data.type` is not one a server sends a component.
    #[error("unsupported message type {0:?}")]
    UnsupportedType(String),
    /// Malformed SBS.
    #[error("malformed {type_name}: {source}")]
    Sbs {
        /// The message type being decoded.
        type_name: &'static str,
        /// What was wrong.
        source: SbsError,
    },
    /// A component's `data` is not JSON.
    #[error("malformed {MSG_SERVER_TYPE}: component {cid} data is not JSON: {source}")]
    Json {
        /// The component whose data it is.
        cid: i64,
        /// What was wrong.
        source: serde_json::Error,
    },
}

impl MsgClient {
    /// Appends the SBS encoding (chatter `Data.data`).
    pub fn encode<W: Writer>(&self, w: &mut W) {
        w.put_str(&self.name);
        w.put_str(&self.group);
        w.put_str(&self.data);
        put_blessing_res(w, &self.blessing_res);
    }

    /// The SBS encoding as a vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a `MsgClient` (what a Monitor Server reads; used by tests and fakes).
    pub fn decode(data: &[u8]) -> Result<Self, MessageError> {
        let sbs = |source| MessageError::Sbs {
            type_name: MSG_CLIENT_TYPE,
            source,
        };
        let mut r = Reader::new(data);
        let msg = (|| {
            Ok(MsgClient {
                name: r.string()?,
                group: r.string()?,
                data: r.string()?,
                blessing_res: read_blessing_res(&mut r)?,
            })
        })()
        .map_err(sbs)?;
        r.finish().map_err(sbs)?;
        Ok(msg)
    }
}

impl MsgServer {
    /// Appends the SBS encoding (used by tests and fakes: a component never sends it).
    pub fn encode<W: Writer>(&self, w: &mut W) {
        w.put_integer(self.cid);
        w.put_integer(self.mid);
        w.put_count(self.components.len());
        for info in &self.components {
            w.put_integer(info.cid);
            w.put_integer(info.mid);
            put_optional_str(w, info.name.as_deref());
            put_optional_str(w, info.group.as_deref());
            w.put_str(&info.data.to_string());
            w.put_integer(info.rank);
            put_optional_integer(w, info.blessing_req.token);
            w.put_optional_tag(info.blessing_req.timestamp.is_some());
            if let Some(t) = info.blessing_req.timestamp {
                w.put_float(t);
            }
            put_blessing_res(w, &info.blessing_res);
        }
    }

    /// The SBS encoding as a vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a `MsgServer`.
    pub fn decode(data: &[u8]) -> Result<Self, MessageError> {
        let sbs = |source| MessageError::Sbs {
            type_name: MSG_SERVER_TYPE,
            source,
        };
        let mut r = Reader::new(data);
        let cid = r.integer().map_err(sbs)?;
        let mid = r.integer().map_err(sbs)?;
        // The smallest ComponentInfo: 2 integers, 2 none tags, "", 1 integer, 2 none
        // tags and 1 none tag + boolean = 10 bytes.
        let (count, capacity) = r.array(10).map_err(sbs)?;
        let mut components = Vec::with_capacity(capacity);
        for _ in 0..count {
            components.push(read_component_info(&mut r)?);
        }
        r.finish().map_err(sbs)?;
        Ok(MsgServer {
            cid,
            mid,
            components,
        })
    }
}

impl ServerMsg {
    /// Decodes a server message from its chatter `Data.type` and `Data.data`. hat's
    /// client accepts only these two types and ends the connection on any other.
    pub fn decode(data_type: &str, data: &[u8]) -> Result<Self, MessageError> {
        match data_type {
            MSG_SERVER_TYPE => MsgServer::decode(data).map(ServerMsg::Server),
            // `None` is encoded as no bytes; hat ignores anything after a value.
            MSG_CLOSE_TYPE => Ok(ServerMsg::Close),
            other => Err(MessageError::UnsupportedType(other.to_owned())),
        }
    }
}

fn read_component_info(r: &mut Reader<'_>) -> Result<ComponentInfo, MessageError> {
    let sbs = |source| MessageError::Sbs {
        type_name: MSG_SERVER_TYPE,
        source,
    };
    let cid = r.integer().map_err(sbs)?;
    let mid = r.integer().map_err(sbs)?;
    let name = read_optional_string(r).map_err(sbs)?;
    let group = read_optional_string(r).map_err(sbs)?;
    let data_text = r.str().map_err(sbs)?;
    let data =
        serde_json::from_str(data_text).map_err(|source| MessageError::Json { cid, source })?;
    let rank = r.integer().map_err(sbs)?;
    let token = read_optional_integer(r).map_err(sbs)?;
    let timestamp = if r.optional("Optional(Float)").map_err(sbs)? {
        Some(r.float().map_err(sbs)?)
    } else {
        None
    };
    let blessing_res = read_blessing_res(r).map_err(sbs)?;
    Ok(ComponentInfo {
        cid,
        mid,
        name,
        group,
        data,
        rank,
        blessing_req: BlessingReq { token, timestamp },
        blessing_res,
    })
}

fn put_blessing_res<W: Writer>(w: &mut W, res: &BlessingRes) {
    put_optional_integer(w, res.token);
    w.put_bool(res.ready);
}

fn put_optional_integer<W: Writer>(w: &mut W, v: Option<i64>) {
    w.put_optional_tag(v.is_some());
    if let Some(v) = v {
        w.put_integer(v);
    }
}

fn put_optional_str<W: Writer>(w: &mut W, v: Option<&str>) {
    w.put_optional_tag(v.is_some());
    if let Some(v) = v {
        w.put_str(v);
    }
}

fn read_blessing_res(r: &mut Reader<'_>) -> Result<BlessingRes, SbsError> {
    Ok(BlessingRes {
        token: read_optional_integer(r)?,
        ready: r.boolean()?,
    })
}

fn read_optional_integer(r: &mut Reader<'_>) -> Result<Option<i64>, SbsError> {
    Ok(if r.optional("Optional(Integer)")? {
        Some(r.integer()?)
    } else {
        None
    })
}

fn read_optional_string(r: &mut Reader<'_>) -> Result<Option<String>, SbsError> {
    Ok(if r.optional("Optional(String)")? {
        Some(r.string()?)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cid: i64, group: &str, req: Option<i64>, res: Option<i64>) -> ComponentInfo {
        ComponentInfo {
            cid,
            mid: 0,
            name: Some(format!("c{cid}")),
            group: Some(group.to_owned()),
            data: serde_json::json!({"server_id": cid}),
            rank: 1,
            blessing_req: BlessingReq {
                token: req,
                timestamp: req.map(|_| 1.5),
            },
            blessing_res: BlessingRes {
                token: res,
                ready: true,
            },
        }
    }

    #[test]
    fn msg_client_bytes() {
        let msg = MsgClient {
            name: "gw".into(),
            group: "g".into(),
            data: "null".into(),
            blessing_res: BlessingRes {
                token: Some(3),
                ready: true,
            },
        };
        // "gw", "g", "null", value(3), true.
        let expected = [
            &[0x82][..],
            b"gw",
            &[0x81],
            b"g",
            &[0x84],
            b"null",
            &[0x81, 0x83, 0x01],
        ]
        .concat();
        assert_eq!(msg.to_bytes(), expected);
        assert_eq!(MsgClient::decode(&expected).unwrap(), msg);
    }

    #[test]
    fn msg_server_round_trip() {
        let msg = MsgServer {
            cid: 2,
            mid: 0,
            components: vec![
                info(1, "event", Some(7), Some(7)),
                info(2, "gw", None, None),
            ],
        };
        let decoded = ServerMsg::decode(MSG_SERVER_TYPE, &msg.to_bytes()).unwrap();
        assert_eq!(decoded, ServerMsg::Server(msg.clone()));
        assert_eq!(msg.own_info().unwrap().cid, 2);
        assert!(msg.components[0].is_active());
        assert!(!msg.components[1].is_active());
    }

    #[test]
    fn msg_close_and_unknown_types() {
        assert_eq!(
            ServerMsg::decode(MSG_CLOSE_TYPE, b"").unwrap(),
            ServerMsg::Close
        );
        let err = ServerMsg::decode("HatObserver.MsgMaster", b"").unwrap_err();
        assert!(
            err.to_string().contains("unsupported message type"),
            "{err}"
        );
    }

    #[test]
    fn malformed_server_messages_are_errors() {
        let msg = MsgServer {
            cid: 2,
            mid: 0,
            components: vec![info(1, "event", Some(7), Some(7))],
        };
        let bytes = msg.to_bytes();
        // Every truncation is an error, never a panic.
        for end in 0..bytes.len() {
            assert!(MsgServer::decode(&bytes[..end]).is_err(), "prefix {end}");
        }
        // A huge component count is refused before anything is allocated.
        let huge = [0x81, 0x80, 0x7f, 0xff, 0xff, 0xff, 0x07];
        assert!(MsgServer::decode(&huge).is_err());
        // Component data that is not JSON.
        let mut bad = info(1, "event", None, None);
        bad.data = serde_json::Value::Null;
        let mut bytes = MsgServer {
            cid: 1,
            mid: 0,
            components: vec![bad],
        }
        .to_bytes();
        let pos = bytes.windows(4).position(|w| w == b"null").unwrap();
        bytes[pos..pos + 4].copy_from_slice(b"nul}");
        let err = MsgServer::decode(&bytes).unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }
}
