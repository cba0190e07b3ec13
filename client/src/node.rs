//! The Node service: a node's status (chain id, height, latest block). Open to anyone: it
//! carries no ledger content.

use varde_proto::v1;

use crate::{Client, Error};

/// `/varde.v1.Node/Status`.
pub const STATUS: &str = "/varde.v1.Node/Status";

impl Client {
    /// Node.Status.
    pub async fn status(&self) -> Result<v1::StatusResponse, Error> {
        let mut node = v1::node_client::NodeClient::new(self.channel().clone());
        let answer = node.status(v1::StatusRequest {}).await;
        self.answer(STATUS, answer)
    }
}
