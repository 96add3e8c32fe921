// Package preflight is `kinship check`: what an operator or configuration management runs
// after an install or a configuration change, before trusting the agent with a fleet's logs.
// Each check gives one Result (ok, warn or FAIL, what was found, what to do); a run fails
// when any check does. Warnings never fail a run: they name what may bite later.
//
// The checks, in order, and how each one knows:
//
//   - config: config.Load, the same as `kinship validate`; a configuration that does not
//     load gives one FAIL per problem (file:line:column) and nothing else is checked.
//     Warnings of an agent.json translation are warns.
//   - credentials: the SDK's default chain (plus aws.role_arn), exactly as the agent builds
//     it (awsconf.Load), asked for credentials once; the result names the chain's source
//     (aws.Credentials.Source: environment, shared file, instance role, web identity,
//     container, assumed role...), the access key id's last four characters and, for
//     temporary credentials, when they expire. The secret is never printed. Sources that
//     belong to whoever runs check (their environment, their ~/.aws, SSO, a
//     credential_process) are a warn: the service runs as another user with the unit's
//     environment and will not see them.
//   - identity: STS GetCallerIdentity, which needs no IAM permission: it proves the
//     credentials are valid and names the principal whose policies must allow the writes.
//     Refused credentials are a FAIL; an STS that cannot be reached is a warn (the agent
//     needs STS only for aws.role_arn).
//   - kinesis, per stream: DescribeStreamSummary (exists, ACTIVE or UPDATING, open shards,
//     on-demand, KMS encryption, which also needs kms:GenerateDataKey), and for flows that
//     take partition keys from the lines, ListShards, which the agent itself calls. Refused
//     reads are a warn naming the permission check lacks (the agent does not need
//     DescribeStreamSummary). Permission to write (kinesis:PutRecords) is not proven, and
//     the ok line says so: only a write proves it, a PutRecords with no records is refused
//     by request validation (kinesalite answers ValidationException; AWS does not document
//     that authorization comes first, so that refusal proves nothing), and check never
//     puts a record into a stream that consumers read. The agent's first send proves it;
//     a refusal shows as kinship_send_errors_total{reason="config"} and the
//     KinshipDestinationRejects alert.
//   - firehose, per delivery stream: DescribeDeliveryStream (exists, ACTIVE); a delivery
//     stream whose source is a Kinesis stream refuses direct puts: FAIL. Write permission
//     (firehose:PutRecordBatch), as above, is not proven.
//   - files, per pattern: the files it matches now (doublestar, the flow's exclude applied
//     as the tailer does), each opened for reading as the service user, and each directory
//     holding them opened for listing (the tailer lists directories to find new files). A
//     pattern that matches nothing, an unreadable file or an unlistable directory is a
//     FAIL. Under a unit with PrivateTmp=yes, a pattern in /tmp or /var/tmp is a FAIL.
//   - state_dir: created as the service user (a probe file, removed at once); a read-only
//     file system, or a directory the unit's ProtectSystem=strict leaves read-only (not
//     under StateDirectory= or ReadWritePaths=), is a FAIL. The file system type (statfs)
//     and free space are shown; tmpfs, a network file system, or less free space than the
//     spools may take are warns.
//   - inotify: the directories the flows will watch now (the patterns' base directories,
//     the directories down to each match, every directory below a ** pattern), counted per
//     flow as each flow has its own inotify instance, against fs.inotify.max_user_watches,
//     and the flows against max_user_instances. Past a limit the tailer polls instead of
//     watching, so it is a warn with the sysctl to raise it.
//   - open_files: the files matched now, plus a few descriptors per flow and per process,
//     against the service's limit: the unit's LimitNOFILE= (drop-ins applied), else
//     systemd's DefaultLimitNOFILE (system.conf, else 1024:524288). Go raises the soft limit
//     to the hard one at start, so the hard limit counts. Without the unit installed, the
//     limit of the shell check runs in. Past the limit is a FAIL, past 80% a warn.
//
// Whose access: the service user, --as-user (a name, or UID[:GID]); as root without it, the
// unit's user kinship when it exists. When that user is the unit's User=, the unit's
// SupplementaryGroups= (adm) are added, as systemd adds them. As root, check does not
// reimplement the kernel's decision: it asks the kernel, on an OS thread of its own whose
// file-system uid, gid and groups are the user's (setfsuid, setfsgid, a per-thread
// setgroups). Changing the fsuid from 0 drops root's file capabilities on that thread, so
// mode bits, ACLs and the search permission of every ancestor decide as they will for the
// service. The thread is never returned to the Go scheduler: the goroutine ends locked, and
// the runtime ends the thread with it. Not as root and not as that user, the kernel cannot be
// asked: the answer is an approximation from mode bits (no ACLs), and the line says so.
//
// check reads the unit (kinship.service in /etc/systemd/system, /run/systemd/system,
// /usr/lib/systemd/system, /lib/systemd/system, and its drop-ins) for User=,
// SupplementaryGroups=, PrivateTmp=, ProtectSystem=, ReadWritePaths=, StateDirectory= and
// LimitNOFILE=; it does not ask systemd, so it works before the unit was ever started.
package preflight
