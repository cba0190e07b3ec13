//! After a run: every acknowledged transaction is on the ledger exactly once.
//!
//! The check reads every block committed since the run began (GetBlock, signed by a member's
//! key) and counts each transaction id: an acknowledged transaction found in no block was lost,
//! one found twice was committed twice, and one found at another height than its receipt said
//! was acknowledged wrongly.

use std::collections::HashMap;

use varde_client::Client;
use varde_proto::v1;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExactlyOnce {
    /// Blocks read (heights `first_height..=last_height`).
    pub first_height: u64,
    pub last_height: u64,
    pub acknowledged: usize,
    /// Acknowledged but in no block read.
    pub missing: usize,
    /// In more than one place (any transaction, acknowledged or not).
    pub duplicated: usize,
    /// Acknowledged with a receipt of another height than the block that holds it.
    pub wrong_height: usize,
}

impl ExactlyOnce {
    pub fn holds(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.wrong_height == 0
    }
}

/// Reads blocks `first_height..=` the head through `client` (which signs with a member's key)
/// and checks `acknowledged` (transaction id, height its receipt named).
pub async fn exactly_once(
    client: &Client,
    first_height: u64,
    acknowledged: &[([u8; 32], u64)],
) -> anyhow::Result<ExactlyOnce> {
    // Another node may have acknowledged a commit that this one has not applied yet: read up
    // to the highest height any receipt named, once this node has it.
    let highest_acknowledged = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .unwrap_or(0);
    let mut last_height = client.status().await?.height;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while last_height < highest_acknowledged {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the node read stays at height {last_height}, below height {highest_acknowledged} \
             that another node acknowledged a commit at"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        last_height = client.status().await?.height;
    }
    let mut found: HashMap<[u8; 32], (u64, u32)> = HashMap::with_capacity(acknowledged.len());
    let mut duplicated = 0;
    for height in first_height.max(1)..=last_height {
        let block = client
            .get_block(v1::GetBlockRequest { auth: None, height })
            .await?;
        for transaction in block.transactions {
            let id: [u8; 32] = transaction
                .transaction_id
                .as_slice()
                .try_into()
                .map_err(|_| {
                    anyhow::anyhow!("block {height} holds a transaction id that is not 32 bytes")
                })?;
            let place = found.entry(id).or_insert((height, 0));
            place.1 += 1;
            if place.1 == 2 {
                duplicated += 1;
            }
        }
    }
    let mut report = ExactlyOnce {
        first_height,
        last_height,
        acknowledged: acknowledged.len(),
        duplicated,
        ..ExactlyOnce::default()
    };
    for (id, height) in acknowledged {
        match found.get(id) {
            None => report.missing += 1,
            Some((found_height, _)) if found_height != height => report.wrong_height += 1,
            Some(_) => {}
        }
    }
    Ok(report)
}
