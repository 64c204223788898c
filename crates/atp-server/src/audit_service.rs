//! `atp.v1.AuditService`: the stored audit trail for auditors (docs/audit.md). Each call is
//! admitted for `audit.read` and recorded before it answers, like any admin read.

use atp_core::audit::EventCode;
use atp_grpc::v1 as pb;
use atp_grpc::v1::audit_service_server::AuditService;
use atp_store::{AuditQuery, StoredAuditBatch, StoredAuditEvent};
use tonic::{Request, Response, Status};

use crate::audit::target;
use crate::compliance::Framework;
use crate::error::{Result, ServerError};
use crate::extensions::CallInfo;
use crate::state::AppState;

/// The operation of every AuditService call.
pub const OP_AUDIT_READ: &str = "audit.read";
/// The page size when a request asks for 0.
pub const DEFAULT_AUDIT_PAGE: u32 = 100;
/// The longest value HashAuditValue hashes, in bytes.
pub const MAX_HASHED_VALUE_BYTES: usize = 1024;

/// The AuditService implementation.
#[derive(Debug)]
pub struct AuditServiceImpl {
    state: AppState,
}

impl AuditServiceImpl {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        AuditServiceImpl { state }
    }

    /// Admits and records an audit read; refuses on a node that keeps no trail.
    async fn admit_read(&self, call: &CallInfo, what: &str) -> Result<()> {
        if self.state.extensions.audit.seal_interval().is_none() {
            return Err(ServerError::EnterpriseRequired { feature: "audit".to_owned() });
        }
        let mut admitted = self.state.admit(call, OP_AUDIT_READ, "node").await?;
        let targets = vec![target("operation", what)];
        admitted.record(&self.state, call, EventCode::AdminAction, targets)?;
        self.state.store_trail(admitted.into_trail()).await
    }

    async fn list_events(
        &self,
        call: &CallInfo,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let query = AuditQuery {
            after_seq: req.after_seq,
            limit: page_size(req.page_size),
            code: (!req.code.is_empty()).then_some(req.code),
            from_ms: (req.from_unix_ms != 0).then_some(req.from_unix_ms),
            to_ms: (req.to_unix_ms != 0).then_some(req.to_unix_ms),
            batch: (req.batch != 0).then_some(req.batch),
        };
        if let Some(code) = &query.code
            && EventCode::parse(code).is_none()
        {
            return Err(ServerError::field("code", format!("unknown event code {code:?}")));
        }
        // Checked before it is admitted: a refused request stores nothing.
        self.admit_read(call, "audit.events.list").await?;
        let events = self.state.store.list_audit_events(query).await?;
        Ok(pb::ListAuditEventsResponse { events: events.into_iter().map(event_record).collect() })
    }

    async fn list_batches(
        &self,
        call: &CallInfo,
        req: pb::ListAuditBatchesRequest,
    ) -> Result<pb::ListAuditBatchesResponse> {
        self.admit_read(call, "audit.batches.list").await?;
        let limit = page_size(req.page_size);
        let batches = self.state.store.list_audit_batches(req.after_batch, limit).await?;
        Ok(pb::ListAuditBatchesResponse {
            batches: batches.into_iter().map(batch_record).collect(),
        })
    }

    async fn hash_value(
        &self,
        call: &CallInfo,
        req: pb::HashAuditValueRequest,
    ) -> Result<pb::HashAuditValueResponse> {
        if req.value.len() > MAX_HASHED_VALUE_BYTES {
            return Err(ServerError::field("value", "longer than 1024 bytes"));
        }
        self.admit_read(call, "audit.hash_value").await?;
        let tenant = (!req.tenant.is_empty()).then_some(req.tenant.as_str());
        let hashed = self
            .state
            .extensions
            .audit
            .hash_value(tenant, &req.value)
            .ok_or_else(|| ServerError::EnterpriseRequired { feature: "audit".to_owned() })?;
        Ok(pb::HashAuditValueResponse { hashed })
    }
}

impl AuditServiceImpl {
    async fn compliance_report(
        &self,
        call: &CallInfo,
        req: pb::GetComplianceReportRequest,
    ) -> Result<pb::GetComplianceReportResponse> {
        let framework = Framework::parse(&req.framework)
            .ok_or_else(|| ServerError::field("framework", "soc2, hipaa or gdpr"))?;
        if req.from_unix_ms >= req.to_unix_ms {
            return Err(ServerError::field("to_unix_ms", "the period must end after it starts"));
        }
        self.admit_read(call, "compliance.report").await?;
        let subject =
            crate::compliance::compute(&self.state, framework, req.from_unix_ms, req.to_unix_ms)
                .await?;
        let report = crate::compliance::credential(&self.state, subject)?;
        let report_json =
            serde_json::to_vec(&report).map_err(|e| ServerError::internal(e.to_string()))?;
        Ok(pb::GetComplianceReportResponse { report_json })
    }
}

fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_AUDIT_PAGE,
        n => n.min(atp_store::audit::MAX_AUDIT_PAGE),
    }
}

fn event_record(e: StoredAuditEvent) -> pb::AuditEventRecord {
    let (batch, chain) = e.sealed.map_or((0, Vec::new()), |(b, c)| (b, c.to_vec()));
    pb::AuditEventRecord { seq: e.seq, event_json: e.body, digest: e.digest.to_vec(), batch, chain }
}

fn batch_record(b: StoredAuditBatch) -> pb::AuditBatchRecord {
    pb::AuditBatchRecord {
        number: b.batch.number,
        first_seq: b.batch.first_seq,
        last_seq: b.batch.last_seq,
        count: b.batch.count,
        previous: b.batch.previous.to_vec(),
        head: b.batch.head.to_vec(),
        log_index: b.log_index,
        sealed_at_unix_ms: b.sealed_at_ms,
        expired_at_unix_ms: b.expired_at_ms.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl AuditService for AuditServiceImpl {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> std::result::Result<Response<pb::ListAuditEventsResponse>, Status> {
        const METHOD: &str = "atp.v1.AuditService/ListAuditEvents";
        let call = CallInfo::from_grpc(METHOD, &request);
        Ok(Response::new(self.list_events(&call, request.into_inner()).await?))
    }

    async fn list_audit_batches(
        &self,
        request: Request<pb::ListAuditBatchesRequest>,
    ) -> std::result::Result<Response<pb::ListAuditBatchesResponse>, Status> {
        const METHOD: &str = "atp.v1.AuditService/ListAuditBatches";
        let call = CallInfo::from_grpc(METHOD, &request);
        Ok(Response::new(self.list_batches(&call, request.into_inner()).await?))
    }

    async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> std::result::Result<Response<pb::GetComplianceReportResponse>, Status> {
        const METHOD: &str = "atp.v1.AuditService/GetComplianceReport";
        let call = CallInfo::from_grpc(METHOD, &request);
        Ok(Response::new(self.compliance_report(&call, request.into_inner()).await?))
    }

    async fn hash_audit_value(
        &self,
        request: Request<pb::HashAuditValueRequest>,
    ) -> std::result::Result<Response<pb::HashAuditValueResponse>, Status> {
        const METHOD: &str = "atp.v1.AuditService/HashAuditValue";
        let call = CallInfo::from_grpc(METHOD, &request);
        Ok(Response::new(self.hash_value(&call, request.into_inner()).await?))
    }
}
