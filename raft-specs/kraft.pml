/*
 * kraft.pml -- Promela model of Fjord's KRaft core (Sources/FjordRaft/RaftCore.swift), for
 * the SPIN model checker. Run it with raft-specs/check; README.md gives the bounds, the
 * measured results and the table that maps every event below to the Swift function.
 *
 * Scope: one static quorum of N = 3 voters, no observers, no snapshots.
 *   durable (quorum-state + log): epoch, votedId, leaderId, the log (offset -> epoch);
 *   volatile (lost on a crash): role, high watermark, collected (pre-)votes, the leader's
 *     view of each follower's fetch offset, the follower's in-flight Fetch.
 *
 * Atomicity. One model step is one call into the sans-I/O core (tick / receive / propose)
 * together with the shell's execution of the RaftReady it returns: persist quorum-state,
 * flush the log, send, then persisted() (RaftRuntime.apply and Simulation.apply do exactly
 * this, synchronously, before the next event). So at every step boundary the log is flushed
 * and the leader's flushedEndOffset equals its end offset, and a crash between steps loses
 * only volatile state. The broken variant BROKEN_VOTE_NOT_PERSISTED breaks that rule.
 *
 * Time is not modelled: every timer may fire whenever its role allows it (election timeout,
 * fetch timeout, request timeout -> resend, check-quorum -> resign). This over-approximates
 * the Swift code, which is sound for the safety properties checked here.
 *
 * Messages. Vote (pre-vote and standard), the grants answering them, Fetch, and the two
 * kinds of Fetch answers (records + high watermark; DivergingEpoch) travel through a
 * network that loses, reorders and duplicates without bound (a delivery leaves the copy in
 * the network; only a loss removes it). Everything else the core exchanges carries only an
 * (epoch, leaderId) fact that the receiver feeds to maybeTransition: BeginQuorumEpoch,
 * EndQuorumEpoch, their responses, Fetch error answers (FENCED_LEADER_EPOCH,
 * UNKNOWN_LEADER_EPOCH, NOT_LEADER) and Vote rejections. Those are modelled by the LEARN
 * event: any node may, at any time, learn any true fact -- an epoch e that some node has
 * reached, with no leader or with the node that became leader of e. That covers every such
 * message, stale or fresh, lost or duplicated (an over-approximation again). A pre-vote
 * refused because a leader is alive changes nothing at the voter (KIP-996), and at the
 * prospective node a refusal only counts towards losing the pre-vote election, whose one
 * effect -- back to following the leader it knew (RaftNode.returnToKnownLeader) -- is the
 * RETURNS event below, enabled at any time like the election timeout that has the same
 * effect; so a refusal is the same as a lost request. A follower's "heard from the leader
 * within fetch.timeout" is time, so a Follower may grant a pre-vote, a Leader never does
 * (RaftCore.handleVoteRequest). A Vote answer naming the leader of the prospective node's
 * own epoch (KIP-996: it follows that leader) is a LEARN fact.
 *
 * Fetch ids (FetchRequestData.fetchId) are modelled exactly: a follower accepts only the
 * answer to its newest Fetch. When it sends a new Fetch or drops its in-flight one (role
 * change, crash), the answers in flight to it are removed and its older Fetches are marked
 * stale: the leader still processes a stale Fetch (noteFetch, high watermark) but its
 * answer would be dropped on arrival, so none is sent.
 *
 * Assertion names (spin prints "assertion violated <Name>") are the invariant names of the
 * simulation (Sources/FjordSimulation/Simulation.swift):
 *   ElectionSafety, VoteDurability, CommittedEntriesNeverLost (including the simulation's
 *   leader-completeness check), HighWatermarkMonotonic, HighWatermarkMajority,
 *   EpochMonotonic, and LogMatching (model only; the simulation's StateMachineSafety
 *   compares applied state instead).
 *
 * Deliberately broken variants (raft-specs/check requires a counterexample from each, with
 * the invariant named here, and replays its trail):
 *   -DBROKEN_VOTE_NOT_PERSISTED  a standard vote is granted (response sent) but quorum-state
 *                                is not written; a crash forgets it (Simulation's
 *                                brokenSkipVotePersist).                  -> VoteDurability
 *   -DBROKEN_VOTE_NO_LOG_CHECK   votes are granted without the up-to-date log check.
 *                                                              -> CommittedEntriesNeverLost
 *   -DBROKEN_HW_MINORITY         the leader's high watermark is its own end offset.
 *                                                                  -> HighWatermarkMajority
 *   -DBROKEN_HW_PREV_EPOCH       the leader's high watermark need not cover its epoch start
 *                                offset (commits an older epoch's entries by counting:
 *                                Raft figure 8); needs -DMAXEPOCH=4.
 *                                                              -> CommittedEntriesNeverLost
 *   -DBROKEN_PROGRESS_ON_DIVERGING  the leader records the fetch offset of a Fetch that it
 *                                answers with DivergingEpoch.      -> HighWatermarkMajority
 *   -DBROKEN_HW_REGRESS          the leader takes a recomputed high watermark even if smaller.
 *                                                                 -> HighWatermarkMonotonic
 *   -DBROKEN_NO_FETCH_ID         a follower applies any answer whose fetch offset equals its
 *                                end offset (no fetchId: the bug the simulation found).
 *                                                              -> CommittedEntriesNeverLost
 *
 * Other compile-time options:
 *   -DSYMMETRY      exact symmetry reduction over the 6 renamings of the nodes (c_code below);
 *                   the correct-model runs use it. Trails are then not replayable.
 *   -DNOHIDDEN      the temporaries become part of the state vector: needed by breadth-first
 *                   search (-DBFS) and by any search that a depth bound (-m) cuts short (a
 *                   step cut in its middle would leave stale temporaries behind).
 *   -DTARGET='e'    reachability probe: assertion "Reachable" fails in a state where e holds.
 *   -DSTALE_ACROSS_RESTART  fetch ids are explicit and restart at 1 with each process (at most
 *                   FIDMAX Fetches per incarnation), and answers addressed to an earlier
 *                   incarnation stay deliverable: a hypothetical shell that would pair them
 *                   with the new process's Fetches. RaftRuntime (answers travel on the
 *                   request's connection, which dies with the process) and the simulation
 *                   (rpcReply checks the incarnation) never deliver them, so the checked model
 *                   drops them at the crash. Exploratory: not run by raft-specs/check.
 *   Bounds and narrowing knobs: see "parameters" below. The narrowing knobs only remove
 *   behaviours; the broken-variant runs use them to reach their bug fast.
 */

/* ================================================================ parameters */
#ifdef TARGET
#define PROBE 1
#else
#define PROBE 0
#endif
/* narrowing knobs (all 1 = the full model; raft-specs/check narrows some runs with them) */
#ifndef RESEND
#define RESEND     1        /* Prospective/Candidate re-send their Vote (request timeout)   */
#endif
#ifndef REFETCH
#define REFETCH    1        /* a Follower re-sends its Fetch (request timeout)              */
#endif
#ifndef LEARN_NONE
#define LEARN_NONE 1        /* facts "(epoch e, no leader)" besides "(e, leader of e)"      */
#endif
#ifndef DUP
#define DUP        1        /* the network duplicates                                       */
#endif
#ifdef NOHIDDEN
#define hidden              /* spin's BFS (-DBFS) cannot handle hidden variables         */
#endif
#define N        3          /* voters (MAJ, the symmetry table and the events assume 3)     */
#define MAJ      2
#ifndef MAXEPOCH
#define MAXEPOCH 3          /* epochs 0..MAXEPOCH; no node stands for an epoch beyond       */
#endif
#ifndef MAXLOG
#define MAXLOG   3          /* entries per log (LeaderChange records + client records)      */
#endif
#ifndef NETCAP
#define NETCAP   3          /* distinct network entries in flight (a broadcast is one)      */
#endif
#ifndef MAXCRASH
#define MAXCRASH 255        /* crashes in a run; 255 = unbounded                            */
#endif
#ifndef CLIENT
#define CLIENT   1          /* 0: no client appends (logs hold LeaderChange records only)   */
#endif

#if MAXLOG > 3
#error "a FETCH_RESP carries at most 3 entries: MAXLOG <= 3"
#endif
#if MAXEPOCH > 6
#error "epochs are 3-bit message fields: MAXEPOCH <= 6"
#endif
#if MAXEPOCH < 1 || MAXLOG < 1 || NETCAP < 1 || NETCAP > 5
#error "MAXEPOCH >= 1, MAXLOG >= 1, 1 <= NETCAP <= 5"
#endif

#define NONE     3          /* votedId / leaderId "none" (-1 in Swift); node ids are 0..2   */

/* roles (RaftRole) */
#define UNATTACHED  0
#define VOTED       1
#define PROSPECTIVE 2
#define CANDIDATE   3
#define LEADER      4
#define FOLLOWER    5
#define RESIGNED    6

/* message types; epoch = the header epoch field; F0..F4 = 3-bit payload fields */
#define VOTE_REQ    1       /* epoch=candidateEpoch F0=preVote F1=lastOffsetEpoch F2=lastOffset */
#define VOTE_RESP   2       /* a GRANT: epoch=requestEpoch F0=preVote                         */
#define FETCH_REQ   3       /* epoch=currentLeaderEpoch F0=fetchOffset F1=lastFetchedEpoch
                               F2=stale (a newer Fetch replaced it: its answer is dropped)   */
#define FETCH_RESP  4       /* epoch=leaderEpoch F0=fetchOffset F1=highWatermark
                               F2..F4=epochs of the records from fetchOffset (0 = none)      */
#define FETCH_DIV   5       /* epoch=leaderEpoch F0=fetchOffset F1=divergingEpoch
                               F2=divergingEndOffset                                         */

/* A network entry is one int: type 3 bits, src 2, destination SET 3 (a broadcast is one
 * entry whose copies are delivered or lost per destination), epoch 3, F0..F4 3 bits each. */
#define MK(ty,s,dm,e,f0,f1,f2,f3,f4) ((ty) | ((s)<<3) | ((dm)<<5) | ((e)<<8) | ((f0)<<11) | \
                                      ((f1)<<14) | ((f2)<<17) | ((f3)<<20) | ((f4)<<23))
#define WITH_ID(m, id) ((m) | ((id) << 26))   /* STALE_ACROSS_RESTART: F5 = fetchId */
#define M_TYPE(m) ((m) & 7)
#define M_SRC(m)  (((m)>>3) & 3)
#define M_DSTS(m) (((m)>>5) & 7)
#define M_EP(m)   (((m)>>8) & 7)
#define M_F0(m)   (((m)>>11) & 7)
#define M_F1(m)   (((m)>>14) & 7)
#define M_F2(m)   (((m)>>17) & 7)
#define M_F3(m)   (((m)>>20) & 7)
#define M_F4(m)   (((m)>>23) & 7)
#define M_F5(m)   (((m)>>26) & 7)
#define STALE_BIT (1 << 17)
#define WITH_DSTS(m, dm) (((m) & ~(7 << 5)) | ((dm) << 5))
#define OTHERS(i) (7 & ~(1 << (i)))

#define LG(i,k)   lg[(i)*MAXLOG + (k)]
#define ME(l,j)   matchEnd[(l)*N + (j)]

/* ================================================================ state */
/* durable: quorum-state (ElectionState) and the log */
byte epoch[N];              /* ElectionState.epoch                                           */
byte voted[N];              /* ElectionState.votedId (NONE = -1)                              */
byte leader[N];             /* ElectionState.leaderId (NONE = -1)                             */
byte leo[N];                /* log end offset                                                */
byte lg[N*MAXLOG];          /* lg[i][k] = epoch of the record at offset k; 0 at/after leo    */
#ifdef BROKEN_VOTE_NOT_PERSISTED
byte pVoted[N];             /* the votedId on disk; voted[] is then the in-memory copy       */
#define DURABLE_VOTED(i) pVoted[i]
#else
#define DURABLE_VOTED(i) voted[i]
#endif

/* volatile: RaftNode's fields, rebuilt by RaftNode.init after a crash */
byte role[N];
byte hw[N];                 /* highWatermark (every role; 0 after a restart)                 */
byte granted[N];            /* grants (bit per node), Prospective/Candidate only             */
byte matchEnd[N*N];         /* leader l: replicas[j].endOffset (0 when unknown)              */

#ifdef STALE_ACROSS_RESTART
#ifndef FIDMAX
#define FIDMAX 3            /* Fetches per process incarnation (ids 1..FIDMAX)               */
#endif
byte fid[N];                /* RaftNode.fetchSeq: restarts at 0 with the process             */
byte inflight[N];           /* inflightFetch's fetchId (0 = none)                            */
#endif

/* network: a set of at most NETCAP entries, sorted descending, 0 = free */
int  net[NETCAP];
byte crashLeft = MAXCRASH;

/* ghosts: read by the assertions only */
byte gLeader[MAXEPOCH+1];   /* the node that became leader of each epoch                    */
byte gVote[N];              /* whom node i voted for in epoch[i] (incl. itself), kept across
                               crashes: VoteDurability                                       */
byte gCommit[MAXLOG];       /* epoch of the committed record at offset k (0 = not yet)       */
byte gCommitEpoch[MAXLOG];  /* epoch of the node whose high watermark first covered k        */

/* temporaries (hidden: not in the state vector; dead between steps) */
hidden int  q_cur, q_tm, q_tm2, q_tm3;
hidden int  q_nb[NETCAP];
hidden byte q_t, q_t2, q_t3, q_t4, q_c1, q_c2, q_c3, q_found, q_ep, q_off, q_le, q_cnt, q_x,
            q_y, q_z, q_ok, q_r, q_keep, q_dead, q_to, q_st;
hidden byte mT, mS, mR, mE, m0, m1, m2, m3, m4, m5;
hidden byte dirty;              /* a log, a high watermark or the set of leaders changed */
hidden byte ElectionSafety, VoteDurability, CommittedEntriesNeverLost, HighWatermarkMonotonic,
            HighWatermarkMajority, LogMatching, EpochMonotonic, Reachable;

/* ================================================================ log helpers */

/* RaftLog.lastFetchedEpoch (0 for an empty log; -1 in Swift) */
inline lastEpochOf(i, res) {
  if
  :: leo[i] == 0 -> res = 0
  :: else        -> res = LG(i, leo[i] - 1)
  fi
}

/* RaftLog.endOffset(forEpoch: e) -> (q_ep, q_off): the largest epoch <= e in the log and
 * where it ends; (0, 0) if none ((-1, -1) in Swift, which callers map to offset 0). Logs
 * are sorted by epoch (checked under LogMatching), so MemoryRaftLog's "start of the next
 * larger epoch" is the offset after the last record with epoch <= e. */
inline endForEpoch(i, e) {
  q_off = 0;
  for (q_t3 : 0 .. MAXLOG-1) {
    if
    :: q_t3 < leo[i] && LG(i, q_t3) <= e -> q_off = q_t3 + 1
    :: else -> skip
    fi
  }
  if
  :: q_off == 0 -> q_ep = 0
  :: else       -> q_ep = LG(i, q_off - 1)
  fi;
  q_t3 = 0
}

/* ================================================================ network */

/* insert entry m: an identical entry absorbs it (unbounded duplication makes two copies
 * the same as one); a full network loses it (loss is allowed anyway); kept sorted */
inline netInsert(m) {
  q_tm = m; q_found = 0;
  for (q_t : 0 .. NETCAP-1) {
    if
    :: net[q_t] == q_tm -> q_found = 1
    :: else -> skip
    fi
  }
  if
  :: q_found == 0 && net[NETCAP-1] == 0 ->
       net[NETCAP-1] = q_tm; q_t = NETCAP-1;
       do
       :: q_t > 0 && net[q_t] > net[q_t-1] -> q_tm = net[q_t-1]; net[q_t-1] = net[q_t]; net[q_t] = q_tm; q_t--
       :: else -> break
       od
  :: else -> skip
  fi;
  q_tm = 0; q_t = 0; q_found = 0
}

#define SEND(ty,s,r,e,f0,f1,f2,f3,f4) netInsert(MK(ty, s, 1 << (r), e, f0, f1, f2, f3, f4))

inline removeSlot(k) {
  q_t = k;
  do
  :: q_t < NETCAP-1 -> net[q_t] = net[q_t+1]; q_t++
  :: else -> break
  od;
  net[NETCAP-1] = 0; q_t = 0
}

/* node r's copy of entry k is lost */
inline loseCopy(k, r) {
  q_tm2 = net[k];
  removeSlot(k);
  if
  :: M_DSTS(q_tm2) != (1 << (r)) -> netInsert(WITH_DSTS(q_tm2, M_DSTS(q_tm2) & ~(1 << (r))))
  :: else -> skip
  fi;
  q_tm2 = 0
}

/* A new Fetch from follower i replaces its in-flight one (or i dropped it): answers in
 * flight to i would now be discarded (fetchId mismatch), and i's older Fetches are stale. */
inline invalidateFetch(i) {
#if defined(STALE_ACROSS_RESTART)
  inflight[i] = 0            /* explicit ids: answers stay in flight and are checked on arrival */
#elif !defined(BROKEN_NO_FETCH_ID)
  for (q_t2 : 0 .. NETCAP-1) { q_nb[q_t2] = net[q_t2]; net[q_t2] = 0 }
  for (q_t2 : 0 .. NETCAP-1) {
    q_tm3 = q_nb[q_t2];
    if
    :: q_tm3 == 0 -> skip
    :: q_tm3 != 0 && (M_TYPE(q_tm3) == FETCH_RESP || M_TYPE(q_tm3) == FETCH_DIV) &&
       M_DSTS(q_tm3) == (1 << (i)) -> skip
    :: q_tm3 != 0 && M_TYPE(q_tm3) == FETCH_REQ && M_SRC(q_tm3) == (i) -> netInsert(q_tm3 | STALE_BIT)
    :: else -> netInsert(q_tm3)
    fi;
    q_nb[q_t2] = 0
  }
  q_tm3 = 0; q_t2 = 0
#else
  skip
#endif
}

/* Whether node r's copy of m can never change anything again (epochs, a vote cast in an
 * epoch and a leader known in an epoch never go back, and a node is Candidate or Leader of
 * an epoch at most once). Losing such copies eagerly only merges states that differ in
 * dead messages. */
inline deadCopy(m, r) {
  if
  :: M_TYPE(m) == VOTE_REQ ->
       q_dead = (M_EP(m) < epoch[r]) ||
                (M_F0(m) == 1 && epoch[M_SRC(m)] >= M_EP(m)) ||
                (M_F0(m) == 0 && M_EP(m) == epoch[r] &&
                 ((DURABLE_VOTED(r) != NONE && DURABLE_VOTED(r) != M_SRC(m)) || leader[r] != NONE))
  :: M_TYPE(m) == VOTE_RESP && M_F0(m) == 1 -> q_dead = (M_EP(m) <= epoch[r])
  :: M_TYPE(m) == VOTE_RESP && M_F0(m) == 0 -> q_dead = !(role[r] == CANDIDATE && epoch[r] == M_EP(m))
  :: M_TYPE(m) == FETCH_REQ -> q_dead = !(role[r] == LEADER && epoch[r] == M_EP(m))
#if !defined(BROKEN_NO_FETCH_ID) && !defined(STALE_ACROSS_RESTART)
  :: M_TYPE(m) == FETCH_RESP || M_TYPE(m) == FETCH_DIV ->
       q_dead = !(role[r] == FOLLOWER && leader[r] == M_SRC(m) && epoch[r] == M_EP(m))
#else
  :: M_TYPE(m) == FETCH_RESP || M_TYPE(m) == FETCH_DIV -> q_dead = (epoch[r] > M_EP(m))
#endif
  fi
}

/* Ghost facts that can no longer matter are forgotten (merging states that differ only in
 * them): every use of gLeader[e] (LEARN, ElectionSafety) concerns an epoch at or above some
 * node's epoch, and gCommitEpoch[k] is only compared with a leader's epoch (a value at or
 * below every node's epoch passes every comparison, as 0 does). */
inline forgetOldGhosts() {
  q_x = epoch[0];
  if :: epoch[1] < q_x -> q_x = epoch[1] :: else -> skip fi;
  if :: epoch[2] < q_x -> q_x = epoch[2] :: else -> skip fi;
  for (q_c1 : 0 .. MAXEPOCH) {
    if :: q_c1 < q_x -> gLeader[q_c1] = NONE :: else -> skip fi
  }
  for (q_c1 : 0 .. MAXLOG-1) {
    if :: gCommitEpoch[q_c1] <= q_x -> gCommitEpoch[q_c1] = 0 :: else -> skip fi
  }
  q_x = 0; q_c1 = 0
}

inline gcNet() {
  for (q_c1 : 0 .. NETCAP-1) { q_nb[q_c1] = net[q_c1]; net[q_c1] = 0 }
  for (q_c1 : 0 .. NETCAP-1) {
    q_tm2 = q_nb[q_c1];
    if
    :: q_tm2 != 0 ->
         q_keep = M_DSTS(q_tm2);
         for (q_r : 0 .. N-1) {
           if
           :: q_keep & (1 << q_r) ->
                deadCopy(q_tm2, q_r);
                if
                :: q_dead -> q_keep = q_keep & ~(1 << q_r)
                :: else -> skip
                fi
           :: else -> skip
           fi
         }
         if
         :: q_keep != 0 -> netInsert(WITH_DSTS(q_tm2, q_keep))
         :: else -> skip
         fi
    :: else -> skip
    fi;
    q_nb[q_c1] = 0
  }
  q_tm2 = 0; q_c1 = 0; q_r = 0; q_keep = 0; q_dead = 0
}

/* ================================================================ durable-state writes */

/* every write of ElectionState.epoch (persist(_:) in Swift) */
inline setEpoch(i, e) {
  EpochMonotonic = (e >= epoch[i]);
  assert(EpochMonotonic);
  if
  :: e > epoch[i] -> gVote[i] = NONE           /* a new epoch: no vote cast in it yet */
  :: else -> skip
  fi;
  epoch[i] = e
}

#ifdef BROKEN_VOTE_NOT_PERSISTED
#define SET_VOTED(i, v)   voted[i] = v; pVoted[i] = v
#define GRANT_VOTE(i, v)  voted[i] = v           /* BROKEN: memory only, yet the grant is sent */
#else
#define SET_VOTED(i, v)   voted[i] = v
#define GRANT_VOTE(i, v)  voted[i] = v           /* persisted before the grant leaves */
#endif

/* ghost: every vote cast (a grant, or a candidate's vote for itself) */
inline ghostVote(i, c) {
  VoteDurability = (gVote[i] == NONE || gVote[i] == c);
  assert(VoteDurability);
  gVote[i] = c
}

/* the leader state cleared by clearLeaderState() and the election bookkeeping that only a
 * Prospective/Candidate uses (normalised to 0 so that dead values do not split states) */
inline clearVolatile(i) {
  granted[i] = 0;
  for (q_t4 : 0 .. N-1) { ME(i, q_t4) = 0 }
  q_t4 = 0
}

/* the follower's fetch loop: RaftNode.sendFetch -- Fetch(currentLeaderEpoch, fetchOffset =
 * end offset, lastFetchedEpoch) to the leader, replacing the in-flight one */
inline sendFetch(i) {
  invalidateFetch(i);
  lastEpochOf(i, q_le);
#ifdef STALE_ACROSS_RESTART
  if
  :: fid[i] < FIDMAX -> fid[i]++; inflight[i] = fid[i];     /* (bound: FIDMAX Fetches a process) */
       netInsert(WITH_ID(MK(FETCH_REQ, i, 1 << leader[i], epoch[i], leo[i], q_le, 0, 0, 0), fid[i]))
  :: else -> skip
  fi;
#else
  SEND(FETCH_REQ, i, leader[i], epoch[i], leo[i], q_le, 0, 0, 0);
#endif
  q_le = 0
}

/* RaftNode.becomeUnattached(e): persist (e, -1, -1) */
inline becomeUnattached(i, e) {
  setEpoch(i, e);
  SET_VOTED(i, NONE); leader[i] = NONE;
  role[i] = UNATTACHED;
  clearVolatile(i);
  invalidateFetch(i)
}

/* RaftNode.becomeFollower(e, l): persist (e, votedId if e is the current epoch, l), then
 * maybeSendFetch -> sendFetch */
inline becomeFollower(i, e, l) {
  if
  :: e > epoch[i] -> setEpoch(i, e); SET_VOTED(i, NONE)
  :: else -> skip
  fi;
  leader[i] = l;
  role[i] = FOLLOWER;
  clearVolatile(i);
  sendFetch(i)
}

/* RaftNode.maybeTransition(epoch: e, leader: l) */
inline maybeTransition(i, e, l) {
  if
  :: e > epoch[i] && l != NONE && l != i -> becomeFollower(i, e, l)
  :: e > epoch[i] && (l == NONE || l == i) -> becomeUnattached(i, e)
  :: e == epoch[i] && l != NONE && l != i && !(role[i] == FOLLOWER && leader[i] == l) &&
     role[i] != LEADER && role[i] != RESIGNED -> becomeFollower(i, e, l)
  :: else -> skip   /* nothing new, or "impossible for a correct peer" (Leader, Resigned) */
  fi
}

/* ================================================================ role changes */

/* RaftNode.becomeProspective: nothing persisted, epoch unchanged; Vote(preVote=true,
 * candidateEpoch = epoch + 1, lastOffsetEpoch, lastOffset = end offset) to the others */
inline becomeProspective(i) {
  role[i] = PROSPECTIVE;
  clearVolatile(i);
  granted[i] = (1 << i);
  invalidateFetch(i);
  lastEpochOf(i, q_le);
  netInsert(MK(VOTE_REQ, i, OTHERS(i), epoch[i] + 1, 1, q_le, leo[i], 0, 0));
  q_le = 0
}

/* RaftNode.becomeCandidate: persist (epoch + 1, self, -1), then Vote(preVote=false) */
inline becomeCandidate(i) {
  setEpoch(i, epoch[i] + 1);
  SET_VOTED(i, i); leader[i] = NONE;
  ghostVote(i, i);
  role[i] = CANDIDATE;
  clearVolatile(i);
  granted[i] = (1 << i);
  lastEpochOf(i, q_le);
  netInsert(MK(VOTE_REQ, i, OTHERS(i), epoch[i], 0, q_le, leo[i], 0, 0));
  q_le = 0
}

/* RaftNode.becomeLeader: persist leaderId = self, append the LeaderChange control record at
 * epochStartOffset = end offset, BeginQuorumEpoch to the others (a LEARN fact). If the log
 * cannot take the record -- in the model: it is full (MAXLOG) -- Swift's catch path resigns. */
inline becomeLeader(i) {
  ElectionSafety = (gLeader[epoch[i]] == NONE || gLeader[epoch[i]] == i);
  assert(ElectionSafety);
  gLeader[epoch[i]] = i;
  leader[i] = i;
  clearVolatile(i);
  if
  :: leo[i] < MAXLOG -> role[i] = LEADER; LG(i, leo[i]) = epoch[i]; leo[i]++
  :: else -> role[i] = RESIGNED                 /* becomeResigned: EndQuorumEpoch = facts */
  fi;
  dirty = 1
}

/* RaftNode.becomeResigned (check-quorum, or the append failure above) */
inline resign(i) {
  role[i] = RESIGNED;
  clearVolatile(i)
}

/* the node's high watermark moves to x: RaftReady.newHighWatermark, where the simulation
 * checks HighWatermarkMonotonic and CommittedEntriesNeverLost (noteHighWatermark) */
inline advanceHW(i, x) {
  HighWatermarkMonotonic = (x >= hw[i]);
  assert(HighWatermarkMonotonic);
  for (q_t2 : 0 .. MAXLOG-1) {
    if
    :: q_t2 < x && gCommit[q_t2] == 0 -> gCommit[q_t2] = LG(i, q_t2); gCommitEpoch[q_t2] = epoch[i]
    :: q_t2 < x && gCommit[q_t2] != 0 ->
         CommittedEntriesNeverLost = (q_t2 < leo[i] && gCommit[q_t2] == LG(i, q_t2));
         assert(CommittedEntriesNeverLost)
    :: else -> skip
    fi
  }
  hw[i] = x; dirty = 1;
  q_t2 = 0
}

/* RaftNode.updateHighWatermark at leader l: the MAJ-th largest of (its flushed end offset,
 * replicas[j].endOffset), if it covers the epoch start offset and exceeds the current HW */
inline updateHighWatermark(l) {
  q_x = leo[l];                                 /* flushedEndOffset == endOffset (see top) */
  q_y = ME(l, (l + 1) % N);
  q_z = ME(l, (l + 2) % N);
  /* the second largest of q_x, q_y, q_z -> q_x */
  if
  :: (q_x >= q_y && q_y >= q_z) || (q_z >= q_y && q_y >= q_x) -> q_x = q_y
  :: (q_y >= q_x && q_x >= q_z) || (q_z >= q_x && q_x >= q_y) -> skip
  :: else -> q_x = q_z
  fi;
#ifdef BROKEN_HW_MINORITY
  q_x = leo[l];
#endif
  /* epochStartOffset: where the leader's LeaderChange record sits */
  q_off = 0;
  do
  :: q_off < leo[l] && LG(l, q_off) != epoch[l] -> q_off++
  :: else -> break
  od;
#if defined(BROKEN_HW_PREV_EPOCH)
  if :: q_x > hw[l] ->
#elif defined(BROKEN_HW_REGRESS)
  if :: q_x > q_off && q_x != hw[l] ->
#else
  if :: q_x > q_off && q_x > hw[l] ->
#endif
       advanceHW(l, q_x)
  :: else -> skip
  fi;
  q_x = 0; q_y = 0; q_z = 0; q_off = 0
}

/* ================================================================ state invariants */
inline check_invariants() {
  /* ElectionSafety (state form; the history form is asserted in becomeLeader) */
  ElectionSafety = 1;
  for (q_c1 : 0 .. N-1) {
    for (q_c2 : 0 .. N-1) {
      if
      :: q_c1 < q_c2 && role[q_c1] == LEADER && role[q_c2] == LEADER && epoch[q_c1] == epoch[q_c2] ->
           ElectionSafety = 0
      :: else -> skip
      fi
    }
  }
  assert(ElectionSafety);

  /* LogMatching: every log is sorted by epoch and holds no epoch above its node's; equal
   * (offset, epoch) in two logs => equal records at the previous offset (so, inductively,
   * equal prefixes) */
  LogMatching = 1;
  for (q_c1 : 0 .. N-1) {
    for (q_c3 : 0 .. MAXLOG-1) {
      if
      :: q_c3 < leo[q_c1] && (LG(q_c1, q_c3) == 0 || LG(q_c1, q_c3) > epoch[q_c1] ||
                              (q_c3 > 0 && LG(q_c1, q_c3) < LG(q_c1, q_c3 - 1))) -> LogMatching = 0
      :: q_c3 >= leo[q_c1] && LG(q_c1, q_c3) != 0 -> LogMatching = 0
      :: else -> skip
      fi
    }
    for (q_c2 : 0 .. N-1) {
      for (q_c3 : 1 .. MAXLOG-1) {
        if
        :: (q_c1 < q_c2 && q_c3 < leo[q_c1] && q_c3 < leo[q_c2] &&
            LG(q_c1, q_c3) == LG(q_c2, q_c3) && LG(q_c1, q_c3-1) != LG(q_c2, q_c3-1)) -> LogMatching = 0
        :: else -> skip
        fi
      }
    }
  }
  assert(LogMatching);

  /* HighWatermarkMajority: a majority of voters hold the leader's log below its HW */
  HighWatermarkMajority = 1;
  for (q_c1 : 0 .. N-1) {
    if
    :: role[q_c1] == LEADER && hw[q_c1] > 0 ->
         q_cnt = 0;
         for (q_c2 : 0 .. N-1) {
           q_ok = (leo[q_c2] >= hw[q_c1]);
           for (q_c3 : 0 .. MAXLOG-1) {
             if
             :: q_ok && q_c3 < hw[q_c1] && LG(q_c2, q_c3) != LG(q_c1, q_c3) -> q_ok = 0
             :: else -> skip
             fi
           }
           if
           :: q_ok -> q_cnt++
           :: else -> skip
           fi
         }
         if
         :: q_cnt < MAJ -> HighWatermarkMajority = 0
         :: else -> skip
         fi
    :: else -> skip
    fi
  }
  assert(HighWatermarkMajority);

  /* CommittedEntriesNeverLost: (a) a committed record is held by a majority; (b) every
   * node's log below its high watermark is the committed log; (c) a leader of the epoch the
   * record was committed in, or of a later one, holds it (the simulation's
   * leader-completeness check, reported under this name) */
  CommittedEntriesNeverLost = 1;
  for (q_c3 : 0 .. MAXLOG-1) {
    if
    :: gCommit[q_c3] != 0 ->
         q_cnt = 0;
         for (q_c1 : 0 .. N-1) {
           if
           :: q_c3 < leo[q_c1] && LG(q_c1, q_c3) == gCommit[q_c3] -> q_cnt++
           :: else -> skip
           fi
         }
         if
         :: q_cnt < MAJ -> CommittedEntriesNeverLost = 0
         :: else -> skip
         fi
    :: else -> skip
    fi;
    for (q_c1 : 0 .. N-1) {
      if
      :: q_c3 < hw[q_c1] && (gCommit[q_c3] == 0 || q_c3 >= leo[q_c1] || LG(q_c1, q_c3) != gCommit[q_c3]) ->
           CommittedEntriesNeverLost = 0
      :: (role[q_c1] == LEADER && gCommit[q_c3] != 0 && gCommitEpoch[q_c3] <= epoch[q_c1] &&
          (q_c3 >= leo[q_c1] || LG(q_c1, q_c3) != gCommit[q_c3])) -> CommittedEntriesNeverLost = 0
      :: else -> skip
      fi
    }
  }
  assert(CommittedEntriesNeverLost);
#ifdef TARGET
  Reachable = !(TARGET);          /* reachability probe: -DTARGET='<expr>' */
  assert(Reachable);
#endif
  q_c1 = 0; q_c2 = 0; q_c3 = 0; q_cnt = 0; q_ok = 0
}

/* ================================================================ message handlers
 * (mT, mS, mE, m0..m4 decoded from the entry; mR = the receiving node) */

/* RaftNode.isUpToDate(lastEpoch: m1, lastOffset: m2) at node i -> q_ok */
inline upToDate(i) {
  lastEpochOf(i, q_le);
#ifdef BROKEN_VOTE_NO_LOG_CHECK
  q_ok = 1;
#else
  q_ok = (m1 > q_le || (m1 == q_le && m2 >= leo[i]));
#endif
  q_le = 0
}

/* RaftNode.handleVoteRequest at i from candidate mS (candidateEpoch mE) */
inline handleVoteRequest(i) {
  if
  :: mE < epoch[i] -> skip                      /* rejected: the answer is a LEARN fact */
  :: mE >= epoch[i] && m0 == 1 ->
       /* pre-vote: no state change; a Leader refuses, a Follower may (time): refusal is a
        * no-op. A grant counts only if our epoch is below candidateEpoch; otherwise the
        * answer's leaderEpoch exceeds the requester's epoch and it only transitions. */
       upToDate(i);
       if
       :: q_ok && role[i] != LEADER && epoch[i] < mE -> SEND(VOTE_RESP, i, mS, mE, 1, 0, 0, 0, 0)
       :: else -> skip
       fi
  :: mE >= epoch[i] && m0 == 0 ->
       if
       :: mE > epoch[i] -> becomeUnattached(i, mE)
       :: else -> skip
       fi;
       upToDate(i);
       if
       :: (voted[i] == NONE || voted[i] == mS) && leader[i] == NONE && q_ok ->
            if
            :: voted[i] != mS -> GRANT_VOTE(i, mS)   /* persist (epoch, votedId) ... */
            :: else -> skip
            fi;
            ghostVote(i, mS);
            role[i] = VOTED;
            clearVolatile(i);
            SEND(VOTE_RESP, i, mS, mE, 0, 0, 0, 0, 0)  /* ... before the grant is sent */
       :: else -> skip                          /* refused: no change */
       fi
  fi;
  q_ok = 0
}

inline countGrants(i) {
  q_cnt = 0;
  for (q_t2 : 0 .. N-1) {
    if
    :: granted[i] & (1 << q_t2) -> q_cnt++
    :: else -> skip
    fi
  }
  q_t2 = 0
}

/* RaftNode.handleVoteResponse at i: a grant from mS for requestEpoch mE */
inline handleVoteResponse(i) {
  if
  :: m0 == 1 && role[i] == PROSPECTIVE && mE == epoch[i] + 1 ->
       granted[i] = granted[i] | (1 << mS);
       countGrants(i);
       if
       :: q_cnt >= MAJ -> becomeCandidate(i)
       :: else -> skip
       fi
  :: m0 == 0 && role[i] == CANDIDATE && mE == epoch[i] ->
       granted[i] = granted[i] | (1 << mS);
       countGrants(i);
       if
       :: q_cnt >= MAJ -> becomeLeader(i)
       :: else -> skip
       fi
  :: else -> skip
  fi;
  q_cnt = 0
}

/* RaftNode.handleFetchRequest at l from follower mS: Fetch(mE, fetchOffset m0,
 * lastFetchedEpoch m1, stale m2) */
inline handleFetchRequest(l) {
  if
  :: role[l] == LEADER && mE == epoch[l] ->
       /* divergence: the fetcher's last epoch must end, in our log, at or after its offset */
       endForEpoch(l, m1);
       if
       :: (m0 == 0 && m1 == 0) || (q_ep == m1 && q_off >= m0) ->
            /* noteFetch(endOffset: fetchOffset), updateHighWatermark, answerFetch */
            ME(l, mS) = m0;
            updateHighWatermark(l);
            if
            :: m2 == 0 ->
                 q_x = 0; q_y = 0; q_z = 0;
                 if :: m0 < leo[l] -> q_x = LG(l, m0) :: else -> skip fi;
                 if :: m0 + 1 < leo[l] -> q_y = LG(l, m0 + 1) :: else -> skip fi;
                 if :: m0 + 2 < leo[l] -> q_z = LG(l, m0 + 2) :: else -> skip fi;
                 netInsert(WITH_ID(MK(FETCH_RESP, l, 1 << mS, mE, m0, hw[l], q_x, q_y, q_z), m5));
                 q_x = 0; q_y = 0; q_z = 0
            :: else -> skip
            fi
       :: else ->
#ifdef BROKEN_PROGRESS_ON_DIVERGING
            ME(l, mS) = m0;
            updateHighWatermark(l);
#endif
            /* DivergingEpoch = endOffset(forEpoch: lastFetchedEpoch) of our log */
            if
            :: m2 == 0 -> netInsert(WITH_ID(MK(FETCH_DIV, l, 1 << mS, mE, m0, q_ep, q_off, 0, 0), m5))
            :: else -> skip
            fi
       fi
  :: else -> skip   /* an error answer carrying (epoch, leaderId): a LEARN fact */
  fi;
  q_ep = 0; q_off = 0
}

/* the answer is to the in-flight Fetch (the network invariant guarantees it, except with
 * explicit ids) */
#ifdef STALE_ACROSS_RESTART
#define ID_MATCHES(i) (inflight[i] != 0 && m5 == inflight[i])
#else
#define ID_MATCHES(i) 1
#endif

/* RaftNode.handleFetchResponse at follower i, records + high watermark from leader mS */
inline handleFetchResponse(i) {
  if
  :: role[i] == FOLLOWER && leader[i] == mS && epoch[i] == mE && m0 == leo[i] && ID_MATCHES(i) ->
       /* appendAsFollower (then flushed) */
       if
       :: m2 != 0 -> LG(i, m0) = m2; leo[i] = m0 + 1
       :: else -> skip
       fi;
       if
       :: m3 != 0 -> LG(i, m0 + 1) = m3; leo[i] = m0 + 2
       :: else -> skip
       fi;
       if
       :: m4 != 0 -> LG(i, m0 + 2) = m4; leo[i] = m0 + 3
       :: else -> skip
       fi;
       dirty = 1;
       /* hw = min(leader's HW, end offset), if it moves forward */
       q_x = (m1 < leo[i] -> m1 : leo[i]);
       if
       :: q_x > hw[i] -> advanceHW(i, q_x)
       :: else -> skip
       fi;
       q_x = 0;
       sendFetch(i)
  :: else -> skip
  fi
}

/* RaftNode.handleFetchResponse at follower i, DivergingEpoch (m1, m2) from leader mS:
 * truncate to min(divergingEndOffset, our endOffset(forEpoch: divergingEpoch)), no HW
 * update, fetch again */
inline handleFetchDiverging(i) {
  if
  :: role[i] == FOLLOWER && leader[i] == mS && epoch[i] == mE && m0 == leo[i] && ID_MATCHES(i) ->
       endForEpoch(i, m1);
       q_to = (q_ep == 0 -> 0 : q_off);
       q_to = (m2 < q_to -> m2 : q_to);
       if
       :: q_to < leo[i] ->
            /* a record equal to a committed one is never truncated */
            CommittedEntriesNeverLost = 1;
            for (q_t2 : 0 .. MAXLOG-1) {
              if
              :: q_t2 >= q_to && q_t2 < leo[i] && gCommit[q_t2] != 0 && LG(i, q_t2) == gCommit[q_t2] ->
                   CommittedEntriesNeverLost = 0
              :: else -> skip
              fi
            }
            assert(CommittedEntriesNeverLost);
            for (q_t2 : 0 .. MAXLOG-1) {
              if
              :: q_t2 >= q_to -> LG(i, q_t2) = 0
              :: else -> skip
              fi
            }
            leo[i] = q_to; q_t2 = 0; dirty = 1
       :: else -> skip
       fi;
       q_to = 0; q_ep = 0; q_off = 0;
       sendFetch(i)
  :: else -> skip
  fi
}

/* ================================================================ node events */

/* tick: the election timeout (Unattached, Voted, Prospective, Candidate, Resigned) or the
 * fetch timeout (Follower) -> becomeProspective. Bound: no pre-vote for MAXEPOCH + 1.
 * Except (KIP-996) a Prospective that followed a leader of its epoch before it stood
 * (leaderId is another node): its election timeout, like its pre-vote election lost to a
 * majority of refusals (refusals are not messages in the model; timers fire at any time,
 * so the timeout covers both), takes it back to following that leader --
 * RaftNode.returnToKnownLeader -> becomeFollower(epoch, leaderId). */
#define RETURNS(i)     (role[i] == PROSPECTIVE && leader[i] != NONE && leader[i] != (i))
#define CAN_TIMEOUT(i) (role[i] != LEADER && epoch[i] < MAXEPOCH && !RETURNS(i))

/* tick: the request timeout of a Prospective/Candidate re-sends its Vote to the voters that
 * have not granted (Swift also skips those that refused; a refusal is not modelled) */
inline resendVotes(i) {
  lastEpochOf(i, q_le);
  if
  :: role[i] == PROSPECTIVE ->
       netInsert(MK(VOTE_REQ, i, OTHERS(i) & ~granted[i], epoch[i] + 1, 1, q_le, leo[i], 0, 0))
  :: else ->
       netInsert(MK(VOTE_REQ, i, OTHERS(i) & ~granted[i], epoch[i], 0, q_le, leo[i], 0, 0))
  fi;
  q_le = 0
}

/* propose(records) on the leader: append one record, flush, persisted() ->
 * updateHighWatermark */
inline clientAppend(i) {
  LG(i, leo[i]) = epoch[i]; leo[i]++; dirty = 1;
  updateHighWatermark(i)
}

/* a crash and restart: the durable state stays; RaftNode.init rebuilds the role from
 * quorum-state (leaderId == self -> Resigned, another leader -> Follower, a vote -> Voted,
 * else Unattached); HW 0; the in-flight Fetch is gone */
inline crash(i) {
#ifdef BROKEN_VOTE_NOT_PERSISTED
  voted[i] = pVoted[i];
#endif
  if
  :: leader[i] == i -> role[i] = RESIGNED
  :: leader[i] != i && leader[i] != NONE -> role[i] = FOLLOWER
  :: leader[i] == NONE && voted[i] != NONE -> role[i] = VOTED
  :: leader[i] == NONE && voted[i] == NONE -> role[i] = UNATTACHED
  fi;
  hw[i] = 0;
  clearVolatile(i);
  invalidateFetch(i)
#ifdef STALE_ACROSS_RESTART
  ; fid[i] = 0
#endif
}

/* ================================================================ symmetry reduction */
#ifdef SYMMETRY
/* Exact symmetry reduction: the protocol treats node ids alike, so after every step the
 * state is replaced by a canonical member of its orbit under the 6 renamings of the nodes
 * (every field indexed by a node or holding a node id is renamed, the network re-sorted).
 * The invariants are symmetric, so no violation can be missed. Off for the broken variants:
 * a trail through renamed states is not a readable trace. */
c_code {
static const int symPerm[6][N] = {{0,1,2},{0,2,1},{1,0,2},{1,2,0},{2,0,1},{2,1,0}};
#define SYM_ID(p, v) ((v) >= N ? (v) : (p)[(v)])
static void sym_rename(State *d, const State *s, const int *p) {
  int i, j, k, m, dm;
  for (i = 0; i < N; i++) {
    int q = p[i];
    d->role[q] = s->role[i];
    d->epoch[q] = s->epoch[i];
    d->voted[q] = SYM_ID(p, s->voted[i]);
    d->leader[q] = SYM_ID(p, s->leader[i]);
    d->leo[q] = s->leo[i];
    for (k = 0; k < MAXLOG; k++) d->lg[q*MAXLOG + k] = s->lg[i*MAXLOG + k];
    d->hw[q] = s->hw[i];
    m = 0;
    for (j = 0; j < N; j++) if (s->granted[i] & (1 << j)) m |= 1 << p[j];
    d->granted[q] = m;
    for (j = 0; j < N; j++) d->matchEnd[q*N + p[j]] = s->matchEnd[i*N + j];
    d->gVote[q] = SYM_ID(p, s->gVote[i]);
#ifdef BROKEN_VOTE_NOT_PERSISTED
    d->pVoted[q] = SYM_ID(p, s->pVoted[i]);
#endif
#ifdef STALE_ACROSS_RESTART
    d->fid[q] = s->fid[i];
    d->inflight[q] = s->inflight[i];
#endif
  }
  for (k = 0; k <= MAXEPOCH; k++) d->gLeader[k] = SYM_ID(p, s->gLeader[k]);
  for (k = 0; k < NETCAP; k++) d->net[k] = 0;
  for (k = 0; k < NETCAP; k++) {
    m = s->net[k];
    if (m != 0) {
      dm = 0;
      for (j = 0; j < N; j++) if (m & (1 << (5 + j))) dm |= 1 << p[j];
      m = (m & ~(0x1F << 3)) | (p[(m >> 3) & 3] << 3) | (dm << 5);
    }
    for (j = k; j > 0 && d->net[j-1] < m; j--) d->net[j] = d->net[j-1];
    d->net[j] = m;
  }
}
/* a node's renaming-invariant signature: the canonical image orders nodes by it, and ties
 * are broken by comparing whole images */
static unsigned long long sym_key(const State *s, int i) {
  unsigned long long k = s->epoch[i];
  int j;
  k = k * 8 + s->role[i];
  k = k * 8 + s->leo[i];
  for (j = 0; j < MAXLOG; j++) k = k * 8 + s->lg[i*MAXLOG + j];
  k = k * 8 + s->hw[i];
  k = k * 4 + (s->voted[i] == i ? 1 : s->voted[i] == NONE ? 0 : 2);
  k = k * 4 + (s->leader[i] == i ? 1 : s->leader[i] == NONE ? 0 : 2);
  k = k * 4 + (s->gVote[i] == i ? 1 : s->gVote[i] == NONE ? 0 : 2);
  return k;
}
static void sym_canon(void) {
  static State best, img;
  unsigned long long key[N];
  int x, q, found = 0, ok;
  unsigned long n = __builtin_offsetof(State, sv);
  for (q = 0; q < N; q++) key[q] = sym_key(&now, q);
  for (x = 0; x < 6; x++) {
    const int *p = symPerm[x];
    int inv[N];
    for (q = 0; q < N; q++) inv[p[q]] = q;          /* inv[pos] = the node renamed to pos */
    ok = 1;
    for (q = 0; q + 1 < N; q++) if (key[inv[q]] > key[inv[q+1]]) ok = 0;
    if (!ok) continue;
    memcpy(&img, &now, n);
    if (x != 0) sym_rename(&img, &now, p);
    if (!found || memcmp(&img, &best, n) < 0) memcpy(&best, &img, n);
    found = 1;
  }
  memcpy(&now, &best, n);
}
}
#define CANON c_code { sym_canon(); }
#else
#define CANON skip
#endif

/* ================================================================ the event loop */

/* Each loop iteration is one step: an atomic sequence (no state is stored inside it) that
 * chooses one enabled event (it only sets the hidden ev/evi/eva), runs it in a d_step, then
 * loses dead copies, checks the invariants and canonicalises in a second d_step. */
hidden byte ev, evi, eva, evn;

#define EV_TIMEOUT   1      /* tick: election/fetch timeout -> becomeProspective          */
#define EV_RESEND    2      /* tick: request timeout of a Prospective/Candidate           */
#define EV_RESIGN    3      /* tick: check-quorum -> becomeResigned                       */
#define EV_PROPOSE   4      /* propose(records) on the leader                             */
#define EV_FETCH     5      /* tick: the follower (re)sends its Fetch                     */
#define EV_CRASH     6      /* crash + restart                                            */
#define EV_LEARN     7      /* a fact (eva, no leader)                                    */
#define EV_LEARN_L   8      /* a fact (eva, gLeader[eva])                                 */
#define EV_DELIVER   9      /* deliver node evi's copy of network entry eva (consumed)    */
#define EV_LOSE     10      /* lose node evi's copy of network entry eva                  */
#define EV_DUP      11      /* deliver node evi's copy of entry eva and keep it (a duplicate) */
#define EV_RETURN   12      /* tick / lost pre-vote: Prospective -> Follower of the known leader */

/* LEARN: node i receives the fact (e, no leader) or (e, the leader of e) -- standing for
 * BeginQuorumEpoch, EndQuorumEpoch, their responses, a Fetch error answer or a Vote refusal
 * -- and calls maybeTransition. Epoch e is a fact once some node has reached it. */
#define REACHED(e) (epoch[0] >= (e) || epoch[1] >= (e) || epoch[2] >= (e))
#define CAN_LEARN(i, e)   (REACHED(e) && (e) > epoch[i])
#define CAN_LEARN_L(i, e) (gLeader[e] != NONE && gLeader[e] != (i) && \
          ((e) > epoch[i] || ((e) == epoch[i] && !(role[i] == FOLLOWER && leader[i] == gLeader[e]) && \
                              role[i] != LEADER && role[i] != RESIGNED)))
#define LEARN(i, e) \
  :: LEARN_NONE && CAN_LEARN(i, e)   -> ev = EV_LEARN;   evi = i; eva = e \
  :: CAN_LEARN_L(i, e) -> ev = EV_LEARN_L; evi = i; eva = e

#if MAXEPOCH == 1
#define LEARN_ALL(i) LEARN(i, 1)
#elif MAXEPOCH == 2
#define LEARN_ALL(i) LEARN(i, 1) LEARN(i, 2)
#elif MAXEPOCH == 3
#define LEARN_ALL(i) LEARN(i, 1) LEARN(i, 2) LEARN(i, 3)
#elif MAXEPOCH == 4
#define LEARN_ALL(i) LEARN(i, 1) LEARN(i, 2) LEARN(i, 3) LEARN(i, 4)
#elif MAXEPOCH == 5
#define LEARN_ALL(i) LEARN(i, 1) LEARN(i, 2) LEARN(i, 3) LEARN(i, 4) LEARN(i, 5)
#else
#define LEARN_ALL(i) LEARN(i, 1) LEARN(i, 2) LEARN(i, 3) LEARN(i, 4) LEARN(i, 5) LEARN(i, 6)
#endif

#define NODE_EVENTS(i) \
  :: CAN_TIMEOUT(i) -> ev = EV_TIMEOUT; evi = i \
  :: RETURNS(i) -> ev = EV_RETURN; evi = i \
  :: RESEND && (role[i] == PROSPECTIVE || role[i] == CANDIDATE) -> ev = EV_RESEND; evi = i \
  :: role[i] == LEADER -> ev = EV_RESIGN; evi = i \
  :: CLIENT && role[i] == LEADER && leo[i] < MAXLOG -> ev = EV_PROPOSE; evi = i \
  :: REFETCH && role[i] == FOLLOWER -> ev = EV_FETCH; evi = i \
  :: crashLeft > 0 -> ev = EV_CRASH; evi = i \
  LEARN_ALL(i)

#define HAS(k, r) (net[k] != 0 && (M_DSTS(net[k]) & (1 << (r))))

/* a FETCH_RESP in slot k with more than n record batches: RaftLog.read(from:maxBytes:)
 * returns whole batches, at least one, up to fetchMaxBytes -- so the answer may stop after
 * any number of batches; the model lets the delivery choose (evn = 1, 2; 0 = all) */
#define MORE_THAN(k, n) (M_TYPE(net[k]) == FETCH_RESP && \
                         ((n) == 1 && M_F3(net[k]) != 0 || (n) == 2 && M_F4(net[k]) != 0))

/* node r's copy of entry k: delivered, delivered with a duplicate left behind, or lost */
#define COPY_EVENTS(k, r) \
  :: HAS(k, r) -> ev = EV_DELIVER; evi = r; eva = k \
  :: HAS(k, r) && MORE_THAN(k, 1) -> ev = EV_DELIVER; evi = r; eva = k; evn = 1 \
  :: HAS(k, r) && MORE_THAN(k, 2) -> ev = EV_DELIVER; evi = r; eva = k; evn = 2 \
  :: DUP && HAS(k, r) -> ev = EV_DUP; evi = r; eva = k \
  :: DUP && HAS(k, r) && MORE_THAN(k, 1) -> ev = EV_DUP; evi = r; eva = k; evn = 1 \
  :: DUP && HAS(k, r) && MORE_THAN(k, 2) -> ev = EV_DUP; evi = r; eva = k; evn = 2 \
  :: HAS(k, r) -> ev = EV_LOSE; evi = r; eva = k

#define NET_EVENTS(k) COPY_EVENTS(k, 0) COPY_EVENTS(k, 1) COPY_EVENTS(k, 2)

/* The trace: one line per step, printed only when spin replays a trail (spin -t; pan never
 * prints). Nodes: role (U Unattached, V Voted, P Prospective, C Candidate, L Leader,
 * F Follower, R Resigned), epoch, votedId, leaderId (- = none), high watermark, the log as
 * record epochs. Network entries: V Vote (p = pre-vote), G grant, F Fetch (s = stale),
 * R records answer, D DivergingEpoch answer; source > destination set; epoch; fields. */
#define ROLEC(r) ((r) == UNATTACHED -> 'U' : ((r) == VOTED -> 'V' : ((r) == PROSPECTIVE -> 'P' : \
                 ((r) == CANDIDATE -> 'C' : ((r) == LEADER -> 'L' : ((r) == FOLLOWER -> 'F' : 'R'))))))
#define IDC(v)   ((v) == NONE -> '-' : '0' + (v))
#define TYC(t)   ((t) == VOTE_REQ -> 'V' : ((t) == VOTE_RESP -> 'G' : ((t) == FETCH_REQ -> 'F' : \
                 ((t) == FETCH_RESP -> 'R' : 'D'))))

inline traceEvent() {
  if
  :: ev == EV_TIMEOUT  -> printf("timeout n%d", evi)
  :: ev == EV_RETURN   -> printf("return-to-leader n%d", evi)
  :: ev == EV_RESEND   -> printf("resend-vote n%d", evi)
  :: ev == EV_RESIGN   -> printf("resign n%d", evi)
  :: ev == EV_PROPOSE  -> printf("propose n%d", evi)
  :: ev == EV_FETCH    -> printf("refetch n%d", evi)
  :: ev == EV_CRASH    -> printf("crash n%d", evi)
  :: ev == EV_LEARN    -> printf("learn n%d (e%d, -)", evi, eva)
  :: ev == EV_LEARN_L  -> printf("learn n%d (e%d, n%d)", evi, eva, gLeader[eva])
  :: ev == EV_LOSE     -> printf("lose n%d's copy of entry %d", evi, eva)
  :: ev == EV_DELIVER ->
       printf("deliver %c n%d>n%d e%d %d %d %d %d %d", TYC(mT), mS, mR, mE, m0, m1, m2, m3, m4)
  :: ev == EV_DUP ->
       printf("deliver (keep a copy) %c n%d>n%d e%d %d %d %d %d %d", TYC(mT), mS, mR, mE, m0, m1,
              m2, m3, m4)
  :: else -> skip
  fi
}

inline traceState() {
  for (q_c1 : 0 .. N-1) {
    printf(" | n%d %c e%d v%c l%c hw%d [", q_c1, ROLEC(role[q_c1]), epoch[q_c1], IDC(voted[q_c1]),
           IDC(leader[q_c1]), hw[q_c1]);
    for (q_c2 : 0 .. MAXLOG-1) {
      if
      :: q_c2 < leo[q_c1] -> printf("%d", LG(q_c1, q_c2))
      :: else -> skip
      fi
    }
    printf("]")
  }
  printf(" | net");
  for (q_c1 : 0 .. NETCAP-1) {
    q_tm2 = net[q_c1];
    if
    :: q_tm2 != 0 ->
         printf(" %c%d>", TYC(M_TYPE(q_tm2)), M_SRC(q_tm2));
         for (q_c2 : 0 .. N-1) {
           if
           :: M_DSTS(q_tm2) & (1 << q_c2) -> printf("%d", q_c2)
           :: else -> skip
           fi
         }
         printf(" e%d %d %d %d %d %d", M_EP(q_tm2), M_F0(q_tm2), M_F1(q_tm2), M_F2(q_tm2),
                M_F3(q_tm2), M_F4(q_tm2))
    :: else -> skip
    fi
  }
  printf("\n");
  q_c1 = 0; q_c2 = 0; q_tm2 = 0
}

/* the event (one d_step each: Spin bounds the size of a d_step) */
inline runEvent() {
  if
  :: ev == EV_TIMEOUT -> d_step { becomeProspective(evi) }
  :: ev == EV_RETURN  -> d_step { becomeFollower(evi, epoch[evi], leader[evi]) }
  :: ev == EV_RESEND  -> d_step { resendVotes(evi) }
  :: ev == EV_RESIGN  -> d_step { resign(evi) }
  :: ev == EV_PROPOSE -> d_step { clientAppend(evi) }
  :: ev == EV_FETCH   -> d_step { sendFetch(evi) }
  :: ev == EV_CRASH   -> d_step { crashLeft = (crashLeft == 255 -> 255 : crashLeft - 1); crash(evi) }
  :: ev == EV_LEARN   -> d_step { maybeTransition(evi, eva, NONE) }
  :: ev == EV_LEARN_L -> d_step { maybeTransition(evi, eva, gLeader[eva]) }
  :: ev == EV_LOSE    -> d_step { loseCopy(eva, evi) }
  :: ev == EV_DELIVER || ev == EV_DUP ->
       d_step {
         q_cur = net[eva];
         if
         :: ev == EV_DELIVER -> loseCopy(eva, evi)   /* taken off the network */
         :: else -> skip
         fi;
         mT = M_TYPE(q_cur); mS = M_SRC(q_cur); mR = evi; mE = M_EP(q_cur);
         m0 = M_F0(q_cur); m1 = M_F1(q_cur); m2 = M_F2(q_cur); m3 = M_F3(q_cur); m4 = M_F4(q_cur);
         m5 = M_F5(q_cur);
         if
         :: evn == 1 -> m3 = 0; m4 = 0        /* only the first batch fitted in maxBytes */
         :: evn == 2 -> m4 = 0
         :: else -> skip
         fi;
         traceEvent();
         q_cur = 0
       };
       if
       :: mT == VOTE_REQ   -> d_step { handleVoteRequest(mR) }
       :: mT == VOTE_RESP  -> d_step { handleVoteResponse(mR) }
       :: mT == FETCH_REQ  -> d_step { handleFetchRequest(mR) }
       :: mT == FETCH_RESP -> d_step { handleFetchResponse(mR) }
       :: mT == FETCH_DIV  -> d_step { handleFetchDiverging(mR) }
       fi;
       d_step { mT = 0; mS = 0; mR = 0; mE = 0; m0 = 0; m1 = 0; m2 = 0; m3 = 0; m4 = 0; m5 = 0 }
  fi
}

active proctype kraft() {
  d_step {
    for (q_t : 0 .. N-1) {
      role[q_t] = UNATTACHED; voted[q_t] = NONE; leader[q_t] = NONE; gVote[q_t] = NONE;
#ifdef BROKEN_VOTE_NOT_PERSISTED
      pVoted[q_t] = NONE;
#endif
    }
    for (q_t : 0 .. MAXEPOCH) { gLeader[q_t] = NONE }
    q_t = 0
  };
  do
  :: atomic {
       if
       NODE_EVENTS(0)
       NODE_EVENTS(1)
       NODE_EVENTS(2)
       NET_EVENTS(0)
#if NETCAP > 1
       NET_EVENTS(1)
#endif
#if NETCAP > 2
       NET_EVENTS(2)
#endif
#if NETCAP > 3
       NET_EVENTS(3)
#endif
#if NETCAP > 4
       NET_EVENTS(4)
#endif
       fi;
       runEvent();
       d_step {
         gcNet();
         forgetOldGhosts();
         if
         :: dirty || PROBE -> check_invariants(); dirty = 0   /* else nothing they read changed */
         :: else -> skip
         fi;
         CANON;
         if
         :: ev != EV_DELIVER && ev != EV_DUP -> traceEvent()
         :: else -> skip
         fi;
         traceState();
         ev = 0; evi = 0; eva = 0; evn = 0
       }
     }
  od
}
