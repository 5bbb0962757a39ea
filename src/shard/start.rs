//! A shard's start: its slice of the spool restored, its log, links, listeners and timers
//! running, then its report when the gateway stops; and each accepted SMPP connection's task.

use super::*;

/// What a shard reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardReport {
    pub id: usize,
    pub connections: u64,
    /// Messages still not final (they stay in the spool).
    pub pending: usize,
    /// The message log's commits and records, and the fdatasync latency (p50, p99, µs).
    pub commits: u64,
    pub records: u64,
    pub sync_us: (u32, u32),
}

/// What the control executor hands each shard at start.
pub struct ShardStart {
    pub spool_dir: Option<std::path::PathBuf>,
    /// The spool as found, one entry per shard (each shard takes its own).
    pub spool: Arc<Mutex<Vec<Option<ShardSpool>>>>,
}

/// Runs one shard until the gateway stops.
pub async fn run(
    shared: Arc<Shared>,
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    listeners: Vec<ListenerSpec>,
    start: Arc<ShardStart>,
) -> ShardReport {
    let (senders, mut receivers) = match mesh.join().await {
        Ok(pair) => pair,
        Err(_) => {
            error!("cannot join the shard mesh");
            shared.stopping.store(true, Ordering::Relaxed);
            return ShardReport::default();
        }
    };
    let id = senders.peer_id();
    let spool = start
        .spool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_mut(id)
        .and_then(Option::take)
        .unwrap_or_default();
    let g = &shared.config.general;
    let (log, disk) = match &start.spool_dir {
        Some(dir) => {
            let log = MessageLog::new(LogConfig {
                dir: crate::store::shard_dir(dir, id),
                shard: id as u16,
                first_seq: spool.first_seq.max(1),
                sync: g.sync == crate::config::SyncMode::Batch,
                sync_window: g.sync_window,
                segment_size: g.segment_size,
                io: g.log_io,
            });
            (
                StoreLog::Disk {
                    log: log.clone(),
                    chain: id as u64,
                },
                Some(log),
            )
        }
        None => (StoreLog::Memory { next: Cell::new(0) }, None),
    };
    let mut flow = Flow::new(
        shared.policy(),
        shared.backup(),
        IdGen {
            epoch_secs: shared.start_secs,
            shard: id as u8,
            next: 0,
        },
    );
    flow.set_report_router(Box::new(reports::ShardReports::new(shared.clone(), id)));
    let first_seq = spool.first_seq.max(1);
    let old = spool.old_segments.clone();
    // Read before the links are copied below: a reload that adds a link in between is then
    // seen as a new version at the first tick.
    let live = shared.live.load_full();
    let shard = Rc::new(ShardState {
        id,
        shared: shared.clone(),
        spool: start
            .spool_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        conns: RefCell::new(HashMap::new()),
        receivers: RefCell::new(HashMap::new()),
        round_robin: Cell::new(0),
        cluster_retry: Cell::new(0),
        cluster_announced: Cell::new(0),
        leased_elsewhere: Default::default(),
        mesh: Some(senders),
        overflow: RefCell::new((0..shared.shards).map(|_| Default::default()).collect()),
        links: RefCell::new(
            shared
                .links
                .iter()
                .map(|l| Rc::new(LocalLink::new(l.clone())))
                .collect(),
        ),
        live_slots: Rc::new(Cell::new(0)),
        live: RefCell::new(live),
        msgs: Messages::new(flow, log, old, first_seq),
        held: RefCell::new(Vec::new()),
        id_arena: RefCell::new(BytesMut::new()),
        next_conn: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
        sim: sim::SimState::default(),
        router: RefCell::new(routing::Router::new(0x2545_F491_4F6C_DD1D ^ id as u64)),
        refusals: Cell::new((None, 0)),
        undelivered: Cell::new((None, 0)),
        listener_tls: RefCell::new(listeners.iter().map(|l| l.tls.clone()).collect()),
        cdrs: RefCell::new(Vec::new()),
        cdr_marks: RefCell::new(Default::default()),
        cdr_next: Cell::new(0),
        cdr_frozen: Cell::new(None),
        metrics: shared
            .metrics
            .then(|| crate::metrics::ShardMetrics::new(id)),
        stall: Cell::new(stall_hook(id)),
        http_out: Default::default(),
    });

    SHARD.with(|s| *s.borrow_mut() = Some(shard.clone()));

    if let (Some(log), Some(m)) = (&disk, &shard.metrics) {
        log.set_metrics(m.commit_records.clone(), m.fdatasync.clone());
    }
    // The log's writer: every commit wakes what waits for it.
    let writer = disk.clone().map(|log| {
        let shard = shard.clone();
        spawn_local(async move { log.run(move |lsn| shard.on_commit(lsn)).await })
    });

    shard.restore(spool);
    shard.start_cluster();

    // Messages from other shards.
    for (_, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_local(async move {
            while let Some(m) = rx.recv().await {
                shard.on_mesh(m);
            }
        })
        .detach();
    }

    // This shard's bind slots of every link: slot i runs on shard i mod shards.
    for li in 0..shared.links.len() {
        shard.start_link_slots(li);
    }

    let mut accept_tasks = Vec::new();
    let accepted = Rc::new(Cell::new(0u64));
    for (index, spec) in listeners.into_iter().enumerate() {
        let listener = match TcpListener::bind(spec.addr) {
            Ok(l) => l,
            Err(e) => {
                error!(
                    "listener {:?}: cannot listen on {}: {e}",
                    spec.name, spec.addr
                );
                if id == 0 {
                    shared.listeners_failed.fetch_add(1, Ordering::Relaxed);
                }
                shared.stopping.store(true, Ordering::Relaxed);
                continue;
            }
        };
        if id == 0 {
            info!(
                "listener {:?} on {} ({}{})",
                spec.name,
                spec.addr,
                if spec.http.is_some() { "HTTP, " } else { "" },
                if spec.tls.is_some() { "TLS" } else { "plain" }
            );
        }
        let shard = shard.clone();
        let accepted = accepted.clone();
        accept_tasks.push(spawn_local(async move {
            loop {
                let accepted_stream = match listener.shared_accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("listener {:?}: accept failed: {e}", spec.name);
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                accepted.set(accepted.get() + 1);
                let total = shard.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(limits) = spec.http {
                    // HTTP requests are short: served where they are accepted.
                    if total > shard.shared.config.general.max_connections
                        || shard.shared.is_stopping()
                    {
                        shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                        drop(accepted_stream.bind_to_executor());
                        continue;
                    }
                    shard.clone().serve_http(
                        accepted_stream.bind_to_executor(),
                        spec.tls.clone(),
                        limits,
                    );
                    continue;
                }
                if total > shard.shared.config.general.max_connections || shard.shared.is_stopping()
                {
                    shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                    let stream = accepted_stream.bind_to_executor();
                    warn!(
                        "refusing connection from {:?}: {} connections is the limit",
                        stream.peer_addr().ok(),
                        shard.shared.config.general.max_connections
                    );
                    continue;
                }
                // Served by the shard with the fewest connections: the kernel's
                // SO_REUSEPORT hash alone can put every bind on one core.
                let to = shard.pick_server();
                if to == shard.id {
                    shard
                        .clone()
                        .serve_accepted(accepted_stream.bind_to_executor(), spec.tls.clone());
                } else {
                    shard.send_to(
                        to,
                        ShardMsg::Serve {
                            stream: accepted_stream,
                            listener: index,
                        },
                    );
                }
            }
        }));
    }

    // Periodic work and the stop flag.
    let mut stop_sent = false;
    let mut stop_deadline = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        shard.apply_reload();
        shard.tick(now);
        if shared.is_stopping() {
            if !stop_sent {
                stop_sent = true;
                for t in accept_tasks.drain(..) {
                    drop(t.cancel());
                }
                let conns: Vec<Inbox> = shard.conns.borrow().values().cloned().collect();
                for tx in conns {
                    let _ = tx.tx.try_send(Outbound::Stop);
                }
                for l in shard.links.borrow().iter() {
                    for s in l.slots.borrow().iter() {
                        let _ = s.try_send(LinkCmd::Stop);
                    }
                }
                stop_deadline = Some(
                    now + shared
                        .config
                        .general
                        .response_timeout
                        .min(Duration::from_secs(10)),
                );
            }
            let open = shard.conns.borrow().len() + shard.live_slots.get();
            if open == 0 || stop_deadline.is_some_and(|d| now >= d) {
                if open > 0 {
                    warn!("shard {id}: {open} sessions did not unbind in time; closing them");
                }
                break;
            }
        }
    }
    // What the log holds pending is written before the shard goes.
    if let (Some(log), Some(writer)) = (&disk, writer) {
        log.stop();
        writer.await;
    }
    shard.run_flow();
    shard.flush_cdrs();
    // The CDR writer (still running) makes the last ends durable: their places go to its
    // checkpoint, so that a clean restart writes none of them again.
    let t0 = Instant::now();
    while shard.cdrs_on()
        && !shard.cdr_marks.borrow().is_empty()
        && t0.elapsed() < Duration::from_secs(2)
    {
        glommio::timer::sleep(Duration::from_millis(10)).await;
        shard.advance_cdr_marks();
    }
    let stats = disk.as_ref().map(|l| l.stats()).unwrap_or_default();
    let pending = shard.msgs.flow.borrow().len();
    let mem = shard.msgs.flow.borrow().stats();
    if mem.spilled > 0 || mem.loaded > 0 {
        info!(
            "shard {id}: {} message bodies left memory for the log (memory_messages), {} read back{}",
            mem.spilled,
            mem.loaded,
            if mem.unreadable > 0 {
                format!(", {} unreadable", mem.unreadable)
            } else {
                String::new()
            }
        );
    }
    ShardReport {
        id,
        connections: accepted.get(),
        pending,
        commits: stats.commits,
        records: stats.records,
        sync_us: stats.sync_percentiles(),
    }
}

/// `SMPPGW_TEST_STALL=SHARD:AFTER_MS:FOR_MS`: shard SHARD blocks its thread FOR_MS once,
/// AFTER_MS after it starts (a test hook for the admin endpoint's health check).
fn stall_hook(id: ShardId) -> Option<(Instant, Duration)> {
    let v = std::env::var("SMPPGW_TEST_STALL").ok()?;
    let mut it = v.split(':').map(|p| p.parse::<u64>().ok());
    let (shard, after, dur) = (it.next()??, it.next()??, it.next()??);
    (shard as usize == id).then(|| {
        (
            Instant::now() + Duration::from_millis(after),
            Duration::from_millis(dur),
        )
    })
}

/// One accepted connection, plain or TLS, until it closes.
pub(super) async fn serve(
    shard: Rc<ShardState>,
    stream: glommio::net::TcpStream,
    peer: Option<SocketAddr>,
    tls: Option<TlsSlot>,
) {
    let conn = shard.next_conn.get();
    shard.next_conn.set(conn + 1);
    let (tx, rx) = local_channel::new_unbounded();
    let inbox = Rc::new(ConnInbox {
        tx,
        deliveries: Cell::new(0),
        account: Cell::new(None),
    });
    shard.register(conn, inbox.clone());
    let now = Instant::now();
    let session = Session::new(Role::Smsc, shard.session_config(), now);
    let handler = EsmeHandler::new(shard.clone(), conn, peer, inbox.clone());
    let limits = DriverLimits {
        write_timeout: shard.shared.config.general.response_timeout,
        write_each: false,
        gather: true,
    };
    let stream = crate::net::direct::Direct::new(stream);
    match tls {
        None => conn::drive(stream, session, handler, &rx, limits).await,
        // Boxed: a TLS session's state is several KiB, which plain sessions should not carry.
        Some(slot) => {
            // The context as last loaded: a reload's new certificate serves new handshakes.
            let acceptor = TlsAcceptor::from(slot.load_full());
            Box::pin(async {
                let handshake = glommio::timer::timeout(
                    shard.shared.config.general.session_init_timeout,
                    async { acceptor.accept(stream).await.map_err(Into::into) },
                );
                match handshake.await {
                    Ok(tls_stream) => {
                        if let Some(m) = &shard.metrics {
                            m.tls_ok.increment(1);
                        }
                        conn::drive(tls_stream, session, handler, &rx, limits).await
                    }
                    Err(e) => {
                        if let Some(m) = &shard.metrics {
                            m.tls_failed.increment(1);
                        }
                        info!("TLS handshake with {peer:?} failed: {e}")
                    }
                }
            })
            .await
        }
    }
    shard.unregister(conn);
    // Deliveries handed to this connection that it never took (they were in its inbox when
    // it closed) go back to their flow, to be offered again; dropped, they would wait as
    // in flight for ever.
    while inbox.tx.len() > 0 {
        match rx.recv().await {
            Some(Outbound::Deliver(d)) => shard.report(d.id, Outcome::Unreachable),
            Some(Outbound::Respond { .. } | Outbound::Stop) => {}
            None => break,
        }
    }
}
