/*
 * kraft.pml -- Promela model of Fjord's KRaft core (issue #4), for the SPIN model checker.
 * Run it with ./check (see README.md for bounds, results and the map to the Swift code).
 *
 * What is modelled (one static quorum of N = 3 voters, no observers, no snapshots):
 *   - durable: the quorum-state file (epoch, votedId, leaderId) and the log (flushed on
 *     append: Kafka flushes a voter's log before its next Fetch); volatile: the role, the
 *     leader's high watermark and follower progress, collected votes, "fetched from the
 *     leader" -- all lost on a crash;
 *   - roles Unattached, Voted, Prospective, Candidate, Leader, Follower, Resigned;
 *   - pre-vote (KIP-996), Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch-based pull
 *     replication with DivergingEpoch truncation, the high-watermark rule, check-quorum
 *     resignation, client appends, crash + restart of any node at any time;
 *   - a network that reorders, loses any message at any time and duplicates a bounded
 *     number of times.
 *
 * Semantics follow Apache Kafka's KafkaRaftClient (4.x, with KIP-996) wherever the brief
 * left room; such choices are marked "Kafka:".
 *
 * Structure: ONE process runs a loop of guarded d_step blocks. Each d_step is one atomic
 * protocol event (a timer firing, one message delivered to one node, a crash, ...), like one
 * `mutating func on...(...) -> [Action]` call of the sans-I/O Swift core: persistence
 * happens inside the event, before the messages it sends can be delivered. State invariants
 * are checked at the end of every event that can affect them; transition properties
 * (EpochMonotonic, VoteDurability, HighWatermarkMonotonic, all-time ElectionSafety, the
 * follower side of CommittedEntriesNeverLost) are asserted where the state changes.
 *
 * Assertion names (spin prints "assertion violated <Name>") are the invariant names shared
 * with the Swift simulation (fjord-sim):
 *   ElectionSafety, VoteDurability, LeaderCompleteness, CommittedEntriesNeverLost,
 *   HighWatermarkMonotonic, HighWatermarkMajority, LogMatching, EpochMonotonic.
 *
 * Deliberately broken variants (./check requires a counterexample for each):
 *   -DBROKEN_VOTE_NOT_PERSISTED     a vote is granted (response sent) before it is durable;
 *                                   a crash forgets it and the node votes twice in an epoch.
 *   -DBROKEN_PROSPECTIVE_VOTE_LOST  a Prospective node grants a standard vote without
 *                                   recording it (Kafka: prospectiveAddVotedState).
 *   -DBROKEN_HW_MINORITY            the leader's HW is its own end offset (a minority).
 *   -DBROKEN_HW_PREV_EPOCH          the leader commits entries of earlier epochs before an
 *                                   entry of its own epoch is on a majority (Raft paper,
 *                                   figure 8); needs -DMAXEPOCH=4.
 *   -DBROKEN_PROGRESS_ON_DIVERGING  the leader records the FetchOffset of a Fetch that it
 *                                   answers with DivergingEpoch.
 *   -DBROKEN_HW_REGRESS             the leader takes the freshly computed HW even when it is
 *                                   smaller (a duplicated old Fetch lowers it).
 *   -DBROKEN_NAIVE_TRUNCATE         a follower truncates to min(DivergingEpoch.endOffset, its
 *                                   end offset) and updates its HW from a diverging response.
 */

/* ================================================================ parameters */
#define N        3          /* voters; MAJ, the symmetry table and the events assume 3      */
#define MAJ      2
#ifndef MAXEPOCH
#define MAXEPOCH 3          /* epochs 0..MAXEPOCH (no node becomes Prospective at MAXEPOCH)  */
#endif
#ifndef MAXLOG
#define MAXLOG   2          /* entries per log (LeaderChange records + client entries)       */
#endif
#ifndef NETCAP
#define NETCAP   2          /* network entries in flight (a broadcast is one entry)          */
#endif
#ifndef MAXDUP
#define MAXDUP   1          /* deliveries of a copy (duplications) in a whole run            */
#endif
#ifndef MAXCRASH
#define MAXCRASH 255        /* crashes in a whole run; 255 = unbounded                        */
#endif
#ifndef CLIENT
#define CLIENT   1          /* 0: no client appends (logs hold LeaderChange records only)     */
#endif
#ifndef RESIGN
#define RESIGN   1          /* 0: leaders never resign (used to narrow some broken variants) */
#endif

#define NONE     3          /* votedId / leaderId "none" (-1 on disk); node ids are 0..N-1   */

/* roles (volatile) */
#define UNATTACHED  0
#define VOTED       1       /* Kafka 4: UnattachedState with a votedKey                      */
#define PROSPECTIVE 2
#define CANDIDATE   3
#define LEADER      4
#define FOLLOWER    5
#define RESIGNED    6

/* message types and their fields (a..d) */
#define VOTE_REQ    1       /* a=PreVote, b=LastOffsetEpoch, c=LastOffset (the end offset)   */
#define VOTE_RESP   2       /* a=VoteGranted; epoch=responder's epoch (no PreVote field on
                               the wire: the receiver's role says what the grant means)     */
#define BEGIN_EPOCH 3       /* BeginQuorumEpoch(LeaderId=src, LeaderEpoch)                   */
#define END_EPOCH   4       /* EndQuorumEpoch(LeaderId=src, LeaderEpoch)                     */
#define FETCH_REQ   5       /* a=FetchOffset, b=LastFetchedEpoch                             */
#define FETCH_RESP  6       /* a=the request's FetchOffset, b=epoch of the entry at a (0 =
                               none; at most one entry per response), c=HighWatermark        */
#define FETCH_DIV   7       /* a=the request's FetchOffset, b=its LastFetchedEpoch,
                               c=DivergingEpoch.Epoch, d=DivergingEpoch.EndOffset            */

/* A network entry is one int: type 3 bits, src 2, destination SET 3 (one bit per node; a
 * broadcast is one entry whose copies are delivered or lost per destination), epoch 3,
 * fields a..d 3 bits each. */
#define MK(ty,s,dm,e,a,b,c,d) ((ty) | ((s)<<3) | ((dm)<<5) | ((e)<<8) | ((a)<<11) | ((b)<<14) | ((c)<<17) | ((d)<<20))
#define M_TYPE(m) ((m) & 7)
#define M_SRC(m)  (((m)>>3) & 3)
#define M_DSTS(m) (((m)>>5) & 7)
#define M_EP(m)   (((m)>>8) & 7)
#define M_A(m)    (((m)>>11) & 7)
#define M_B(m)    (((m)>>14) & 7)
#define M_C(m)    (((m)>>17) & 7)
#define M_D(m)    (((m)>>20) & 7)
#define WITH_DSTS(m, dm) (((m) & ~(7 << 5)) | ((dm) << 5))
#define OTHERS(i) (7 & ~(1 << (i)))

#define LG(i,k)   lg[(i)*MAXLOG + (k)]
#define ME(l,j)   matchEnd[(l)*N + (j)]

/* ================================================================ state */
/* durable */
byte epoch[N];              /* quorum-state LeaderEpoch                                      */
byte voted[N];              /* quorum-state VotedId                                          */
byte leader[N];             /* quorum-state LeaderId                                         */
byte leo[N];                /* log end offset                                                */
byte lg[N*MAXLOG];          /* lg[i][k] = epoch of the entry at offset k; 0 beyond leo       */
#ifdef BROKEN_VOTE_NOT_PERSISTED
byte pVoted[N];             /* the votedId on disk; voted[] is then only the memory copy    */
#endif

/* volatile */
byte role[N];
byte hw[N];                 /* the LEADER's high watermark (0 = unknown). A follower's HW
                               drives no decision of the core, so it is not state here: each
                               HW a follower learns is checked when learned                  */
bit  fetched[N];            /* KIP-996 "has fetched from the leader": a Follower that fetched
                               successfully in this epoch rejects pre-votes. Cleared by the
                               fetch timeout (-> Prospective), EndQuorumEpoch, a role or epoch
                               change and a crash                                            */
byte granted[N];            /* (pre-)votes collected as Prospective/Candidate (bit per node) */
byte matchEnd[N*N];         /* leader l: voter j's FetchOffset of its last valid Fetch       */

/* network: a set of at most NETCAP entries, sorted (one canonical order), 0 = free */
int  net[NETCAP];
byte dupLeft = MAXDUP;
byte crashLeft = MAXCRASH;

/* ghosts: never read by the protocol */
byte gLeader[MAXEPOCH+1];   /* who became leader of each epoch, over all time               */
byte gVote[N];              /* whom node i voted for in epoch[i] (incl. itself), over crashes */
byte gCommit[MAXLOG];       /* epoch of the committed entry at offset k (0 = none yet)       */
byte gCommitEpoch[MAXLOG];  /* epoch of the leader that first committed offset k             */

/* temporaries: hidden = not part of the state vector; dead between events */
hidden int  q_cur, q_tm, q_m1;
hidden int  q_nb[NETCAP];
hidden byte q_t, q_t2, q_t3, q_c1, q_c2, q_c3, q_found, q_ep, q_off, q_le, q_cnt, q_x,
            q_ok, q_grant, q_r, q_keep, dirty;
hidden byte mT, mS, mR, mE, mA, mB, mC, mD;
hidden byte ElectionSafety, VoteDurability, LeaderCompleteness, CommittedEntriesNeverLost,
            HighWatermarkMonotonic, HighWatermarkMajority, LogMatching, EpochMonotonic;

/* ================================================================ log helpers */

/* the epoch of the last entry (0 for an empty log) */
inline lastEpochOf(i, res) {
  if
  :: leo[i] == 0 -> res = 0
  :: else        -> res = LG(i, leo[i] - 1)
  fi
}

/* ReplicatedLog.endOffsetForEpoch(e) -> (q_ep, q_off): the largest epoch <= e present in the
 * log and the end offset of its entries (logs are sorted by epoch) */
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
  fi
}

/* ================================================================ network */

/* insert entry m (set semantics: an identical entry in flight absorbs it; a full network
 * loses it -- loss is allowed anyway) keeping the array sorted, descending, zeros last */
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

/* unicast from s to r */
#define SEND(ty,s,r,e,a,b,c,d)  netInsert(MK(ty, s, 1 << (r), e, a, b, c, d))
/* one request from i to each other voter (one entry) */
#define BCAST(ty,i,e,a,b,c)     netInsert(MK(ty, i, OTHERS(i), e, a, b, c, 0))

inline removeSlot(k) {
  q_t = k;
  do
  :: q_t < NETCAP-1 -> net[q_t] = net[q_t+1]; q_t++
  :: else -> break
  od;
  net[NETCAP-1] = 0; q_t = 0
}

/* node r takes (receives or loses) its copy of entry k */
inline takeCopy(k, r) {
  q_m1 = net[k];
  removeSlot(k);
  if
  :: M_DSTS(q_m1) != (1 << (r)) -> netInsert(WITH_DSTS(q_m1, M_DSTS(q_m1) & ~(1 << (r))))
  :: else -> skip
  fi;
  q_m1 = 0
}

/* Eagerly lose copies that can never have an effect again (the network may lose anything,
 * so this only merges states that differ in dead messages): a response, BeginQuorumEpoch,
 * EndQuorumEpoch or Fetch for an epoch below the receiver's (epochs never decrease and those
 * handlers ignore lower epochs), and a BeginQuorumEpoch for an epoch whose leader the
 * receiver already knows. Stale Vote requests are kept: Kafka answers them with the higher
 * epoch, which the requester then adopts. */
inline gcNet() {
  for (q_c1 : 0 .. NETCAP-1) { q_nb[q_c1] = net[q_c1]; net[q_c1] = 0 }
  for (q_c1 : 0 .. NETCAP-1) {
    q_tm = q_nb[q_c1];
    if
    :: q_tm != 0 ->
         q_keep = M_DSTS(q_tm);
         for (q_r : 0 .. N-1) {
           if
           :: (q_keep & (1 << q_r)) && M_TYPE(q_tm) != VOTE_REQ && M_EP(q_tm) < epoch[q_r] ->
                q_keep = q_keep & ~(1 << q_r)
           :: ((q_keep & (1 << q_r)) && M_TYPE(q_tm) == BEGIN_EPOCH && M_EP(q_tm) == epoch[q_r] &&
               leader[q_r] != NONE) -> q_keep = q_keep & ~(1 << q_r)
           :: else -> skip
           fi
         }
         if
         :: q_keep != 0 -> netInsert(WITH_DSTS(q_tm, q_keep))
         :: else -> skip
         fi
    :: else -> skip
    fi;
    q_nb[q_c1] = 0
  }
  q_tm = 0; q_c1 = 0; q_r = 0; q_keep = 0
}

/* ================================================================ durable-state writes */

/* every epoch change goes through here */
inline setEpoch(i, e) {
  EpochMonotonic = (e >= epoch[i]);
  assert(EpochMonotonic);
  if
  :: e > epoch[i] -> gVote[i] = NONE          /* no vote cast in the new epoch yet */
  :: else -> skip
  fi;
  epoch[i] = e
}

#ifdef BROKEN_VOTE_NOT_PERSISTED
#define PERSIST_VOTE(i, v)  pVoted[i] = v
#define GRANT_VOTE(i, v)    voted[i] = v     /* BROKEN: memory only, the response goes out */
#else
#define PERSIST_VOTE(i, v)  skip             /* voted[] is the durable copy itself         */
#define GRANT_VOTE(i, v)    voted[i] = v     /* fsync(quorum-state) happens-before the send */
#endif

/* ghost: every vote cast (a grant, or a candidate's vote for itself) */
inline ghostVote(i, c) {
  VoteDurability = (gVote[i] == NONE || gVote[i] == c);
  assert(VoteDurability);
  gVote[i] = c
}

inline clearVolatile(i) {
  fetched[i] = 0; granted[i] = 0; hw[i] = 0;
  for (q_t2 : 0 .. N-1) { ME(i, q_t2) = 0 }
}

/* QuorumState.transitionToUnattached(e): persist (e, none, none) */
inline toUnattached(i, e) {
  setEpoch(i, e);
  voted[i] = NONE; PERSIST_VOTE(i, NONE); leader[i] = NONE;
  role[i] = UNATTACHED;
  clearVolatile(i)
}

/* QuorumState.transitionToFollower(e, l): persist (e, votedId kept in the same epoch, l) */
inline toFollower(i, e, l) {
  if
  :: e > epoch[i] -> setEpoch(i, e); voted[i] = NONE; PERSIST_VOTE(i, NONE)
  :: else -> skip
  fi;
  leader[i] = l;
  role[i] = FOLLOWER;
  clearVolatile(i)
}

/* Kafka maybeTransition(leaderId, epoch), for BeginQuorumEpoch and EndQuorumEpoch from l:
 * follow l if its epoch is newer, or is ours and we know no leader in it */
inline maybeTransition(i, l, e) {
  if
  :: e > epoch[i] || (e == epoch[i] && leader[i] == NONE) -> toFollower(i, e, l)
  :: else -> skip
  fi
}

/* ================================================================ role changes */

/* onElectionTimeout / fetch timeout -> Prospective: Vote(PreVote=true) to the other voters.
 * Nothing is persisted and the epoch is not bumped. Kafka: a pre-vote carries the sender's
 * CURRENT epoch (KafkaRaftClient.buildVoteRequest), not epoch + 1. */
inline becomeProspective(i) {
  role[i] = PROSPECTIVE;
  fetched[i] = 0; granted[i] = (1 << i);
  lastEpochOf(i, q_le);
  BCAST(VOTE_REQ, i, epoch[i], 1, q_le, leo[i]);
  q_le = 0
}

/* a majority of pre-votes -> Candidate: epoch + 1 and a vote for itself, persisted, then
 * Vote(PreVote=false) to the other voters */
inline becomeCandidate(i) {
  setEpoch(i, epoch[i] + 1);
  voted[i] = i; PERSIST_VOTE(i, i); leader[i] = NONE;
  ghostVote(i, i);
  role[i] = CANDIDATE;
  clearVolatile(i);
  granted[i] = (1 << i);
  lastEpochOf(i, q_le);
  BCAST(VOTE_REQ, i, epoch[i], 0, q_le, leo[i]);
  q_le = 0
}

/* becomeLeader: a majority of votes. Persists leaderId = self, appends the LeaderChange
 * control record at the epoch start offset, HW unknown (Kafka does not carry the HW into a
 * new leadership), BeginQuorumEpoch to the other voters. Caller guards leo < MAXLOG. */
inline becomeLeader(i) {
  ElectionSafety = (gLeader[epoch[i]] == NONE || gLeader[epoch[i]] == i);
  assert(ElectionSafety);
  gLeader[epoch[i]] = i;
  role[i] = LEADER; leader[i] = i;
  clearVolatile(i);
  LG(i, leo[i]) = epoch[i]; leo[i]++;
  dirty = 1;
  BCAST(BEGIN_EPOCH, i, epoch[i], 0, 0, 0)
}

/* updateHighWatermark (Kafka LeaderState.maybeUpdateHighWatermark) */
inline updateHighWatermark(l) {
  /* q_x = the largest offset reached by a majority of voters: the leader counts with its
   * end offset, a follower with the FetchOffset of its last valid Fetch in this epoch */
  q_x = 0;
  for (q_t2 : 1 .. MAXLOG) {
    q_cnt = 0;
    for (q_t3 : 0 .. N-1) {
      if
      :: (q_t3 == l && leo[l] >= q_t2) || (q_t3 != l && ME(l, q_t3) >= q_t2) -> q_cnt++
      :: else -> skip
      fi
    }
    if
    :: q_cnt >= MAJ -> q_x = q_t2
    :: else -> skip
    fi
  }
#ifdef BROKEN_HW_MINORITY
  q_x = leo[l];
#endif
  /* the epoch start offset: the offset of the leader's own LeaderChange record */
  q_off = 0;
  do
  :: q_off < leo[l] && LG(l, q_off) != epoch[l] -> q_off++
  :: else -> break
  od;
#if defined(BROKEN_HW_PREV_EPOCH)
  if :: q_x >= q_off && q_x > hw[l] ->
#elif defined(BROKEN_HW_REGRESS)
  if :: q_x > q_off && q_x != hw[l] ->
#else
  /* Kafka: "highWatermarkUpdateOffset > epochStartOffset" (the HW must cover the leader's
   * own LeaderChange record), and the HW never moves backwards */
  if :: q_x > q_off && q_x > hw[l] ->
#endif
       for (q_t2 : 0 .. MAXLOG-1) {          /* ghost: what is now committed */
         if
         :: q_t2 < q_x && gCommit[q_t2] == 0 -> gCommit[q_t2] = LG(l, q_t2); gCommitEpoch[q_t2] = epoch[l]
         :: q_t2 < q_x && gCommit[q_t2] != 0 ->
              CommittedEntriesNeverLost = (gCommit[q_t2] == LG(l, q_t2));
              assert(CommittedEntriesNeverLost)
         :: else -> skip
         fi
       }
       HighWatermarkMonotonic = (q_x >= hw[l]);
       assert(HighWatermarkMonotonic);
       hw[l] = q_x; dirty = 1
  :: else -> skip
  fi;
  q_x = 0; q_cnt = 0; q_off = 0
}

/* ================================================================ state invariants */
inline check_invariants() {
  /* ElectionSafety (state form: no two leaders of one epoch; the all-time form is the
   * gLeader assertion in becomeLeader) */
  ElectionSafety = 1;
  for (q_c1 : 0 .. N-1) {
    for (q_c2 : 0 .. N-1) {
      if
      :: (q_c1 < q_c2 && role[q_c1] == LEADER && role[q_c2] == LEADER &&
          epoch[q_c1] == epoch[q_c2]) -> ElectionSafety = 0
      :: else -> skip
      fi
    }
  }
  assert(ElectionSafety);

  /* LogMatching: equal (offset, epoch) in two logs => equal entries at the previous offset
   * (so, inductively, equal prefixes) */
  LogMatching = 1;
  for (q_c1 : 0 .. N-1) {
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

  /* CommittedEntriesNeverLost: each committed entry is still held by a majority, and a
   * leader's log agrees with the committed entries below its HW */
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
      :: (q_c3 < hw[q_c1] && (gCommit[q_c3] == 0 || q_c3 >= leo[q_c1] ||
          LG(q_c1, q_c3) != gCommit[q_c3])) -> CommittedEntriesNeverLost = 0
      :: else -> skip
      fi
    }
  }
  assert(CommittedEntriesNeverLost);

  /* LeaderCompleteness: a leader holds every entry committed in an earlier epoch */
  LeaderCompleteness = 1;
  for (q_c1 : 0 .. N-1) {
    for (q_c3 : 0 .. MAXLOG-1) {
      if
      :: (role[q_c1] == LEADER && gCommit[q_c3] != 0 && gCommitEpoch[q_c3] < epoch[q_c1] &&
          (q_c3 >= leo[q_c1] || LG(q_c1, q_c3) != gCommit[q_c3])) -> LeaderCompleteness = 0
      :: else -> skip
      fi
    }
  }
  assert(LeaderCompleteness);

  /* HighWatermarkMajority: a leader's HW is <= the end offset of a majority of voters
   * whose logs hold the leader's entries below the HW */
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
  q_c1 = 0; q_c2 = 0; q_c3 = 0; q_cnt = 0; q_ok = 0
}

/* ================================================================ message handlers
 * (mT, mS, mE, mA..mD decoded from the entry; mR = the receiving node) */

/* handleVoteRequest at i from mS */
inline handleVoteRequest(i) {
  if
  :: mE < epoch[i] ->
       /* FENCED_LEADER_EPOCH: answer with our epoch so the sender catches up */
       SEND(VOTE_RESP, i, mS, epoch[i], 0, 0, 0, 0)
  :: else ->
       /* Kafka: a request with a higher epoch moves us to Unattached in that epoch, for a
        * standard vote AND for a pre-vote (whose epoch the sender already holds durably);
        * granting a pre-vote changes nothing else */
       if
       :: mE > epoch[i] -> toUnattached(i, mE)
       :: else -> skip
       fi;
       lastEpochOf(i, q_le);
       q_ok = (mB > q_le || (mB == q_le && mC >= leo[i]));   /* sender's log is up to date */
       if
       :: mA == 1 ->                                         /* canGrantVote(.., preVote) */
            if
            :: role[i] == UNATTACHED || role[i] == VOTED || role[i] == PROSPECTIVE || role[i] == CANDIDATE ->
                 q_grant = q_ok
            :: role[i] == FOLLOWER -> q_grant = (q_ok && !fetched[i])
            :: else -> q_grant = 0                          /* Leader, Resigned */
            fi
       :: else ->                                            /* standard vote */
            if
            :: role[i] == UNATTACHED || role[i] == VOTED || role[i] == PROSPECTIVE ->
                 if
                 :: voted[i] == mS -> q_grant = 1
                 :: voted[i] != NONE && voted[i] != mS -> q_grant = 0
                 :: voted[i] == NONE && leader[i] != NONE -> q_grant = 0
                 :: voted[i] == NONE && leader[i] == NONE -> q_grant = q_ok
                 fi
            :: else -> q_grant = 0             /* Candidate, Leader, Follower, Resigned */
            fi;
            if
            :: q_grant && voted[i] == NONE ->
#ifdef BROKEN_PROSPECTIVE_VOTE_LOST
                 if
                 :: role[i] != PROSPECTIVE -> GRANT_VOTE(i, mS)
                 :: else -> skip                            /* BROKEN: not recorded */
                 fi;
#else
                 GRANT_VOTE(i, mS);                         /* persist (epoch, votedId) ... */
#endif
                 ghostVote(i, mS);
                 if
                 :: role[i] == UNATTACHED -> role[i] = VOTED
                 :: else -> skip                            /* a Prospective stays Prospective */
                 fi
            :: else -> skip
            fi
       fi;
       if
       :: q_grant -> SEND(VOTE_RESP, i, mS, epoch[i], 1, 0, 0, 0)   /* ... before this send */
       :: else -> skip       /* a same-epoch rejection only makes the sender back off */
       fi
  fi;
  q_le = 0; q_ok = 0; q_grant = 0
}

/* handleVoteResponse at i from mS */
inline handleVoteResponse(i) {
  if
  :: mE > epoch[i] -> toUnattached(i, mE)
  :: mE == epoch[i] && mA == 1 && (role[i] == PROSPECTIVE || role[i] == CANDIDATE) ->
       granted[i] = granted[i] | (1 << mS);
       q_cnt = 0;
       for (q_t2 : 0 .. N-1) {
         if
         :: granted[i] & (1 << q_t2) -> q_cnt++
         :: else -> skip
         fi
       }
       if
       :: q_cnt >= MAJ && role[i] == PROSPECTIVE && epoch[i] < MAXEPOCH -> becomeCandidate(i)
       :: q_cnt >= MAJ && role[i] == CANDIDATE && leo[i] < MAXLOG -> becomeLeader(i)
       :: else -> skip   /* (bound: a winner whose log is full cannot append LeaderChange) */
       fi;
       q_cnt = 0
  :: else -> skip
  fi
}

/* handleBeginQuorumEpochRequest at i from leader mS */
inline handleBeginQuorumEpoch(i) {
  maybeTransition(i, mS, mE)
}

/* handleEndQuorumEpochRequest at i from the resigned leader mS: follow the epoch, and if we
 * follow mS in it, let the fetch timer expire early (pre-votes may now be granted) */
inline handleEndQuorumEpoch(i) {
  maybeTransition(i, mS, mE);
  if
  :: role[i] == FOLLOWER && leader[i] == mS && epoch[i] == mE -> fetched[i] = 0
  :: else -> skip
  fi
}

/* handleFetchRequest at leader l from follower mS */
inline handleFetchRequest(l) {
  if
  :: role[l] == LEADER && mE == epoch[l] ->
       endForEpoch(l, mB);
       if
       :: q_ep == mB && q_off >= mA ->
            /* valid: record the follower's end offset, maybe advance the HW, send the entry
             * at FetchOffset (if any) and the HW */
            ME(l, mS) = mA;
            updateHighWatermark(l);
            if
            :: mA < leo[l] -> q_le = LG(l, mA)
            :: else -> q_le = 0
            fi;
            SEND(FETCH_RESP, l, mS, mE, mA, q_le, hw[l], 0)
       :: else ->
#ifdef BROKEN_PROGRESS_ON_DIVERGING
            ME(l, mS) = mA;
            updateHighWatermark(l);
#endif
            /* DivergingEpoch = endOffsetForEpoch(LastFetchedEpoch) of the leader's log */
            SEND(FETCH_DIV, l, mS, mE, mA, mB, q_ep, q_off)
       fi
  :: else -> skip   /* Kafka answers a wrong-epoch Fetch with an error that carries the
                       current epoch/leader: faster discovery only, not modelled */
  fi;
  q_ep = 0; q_off = 0; q_le = 0
}

/* handleFetchResponse at follower i, no divergence: append, learn the HW. A response is
 * used only if it answers the Fetch we would send now (same epoch and leader, FetchOffset
 * == our end offset): Kafka drops other responses by correlation id. */
inline handleFetchResponse(i) {
  if
  :: role[i] == FOLLOWER && leader[i] == mS && epoch[i] == mE && mA == leo[i] ->
       if
       :: mB != 0 && leo[i] < MAXLOG -> LG(i, leo[i]) = mB; leo[i]++; dirty = 1   /* + flush */
       :: else -> skip
       fi;
       fetched[i] = 1;
       /* follower HW = min(leader HW, end offset): every entry below it must be committed */
       q_x = (mC < leo[i] -> mC : leo[i]);
       CommittedEntriesNeverLost = 1;
       for (q_t2 : 0 .. MAXLOG-1) {
         if
         :: q_t2 < q_x && (gCommit[q_t2] == 0 || LG(i, q_t2) != gCommit[q_t2]) -> CommittedEntriesNeverLost = 0
         :: else -> skip
         fi
       }
       assert(CommittedEntriesNeverLost);
       q_x = 0
  :: else -> skip
  fi
}

/* handleFetchResponse at follower i with DivergingEpoch(mC, mD): truncate, then fetch again.
 * Kafka ReplicatedLog.truncateToEndOffset -- NOT simply min(EndOffset, our end offset) --
 * and no HW update from a diverging response. */
inline handleFetchDiverging(i) {
  lastEpochOf(i, q_le);
  if
  :: (role[i] == FOLLOWER && leader[i] == mS && epoch[i] == mE && mA == leo[i] &&
      mB == q_le) ->
#ifdef BROKEN_NAIVE_TRUNCATE
       q_x = (mD < leo[i] -> mD : leo[i]);
#else
       if
       :: mC == 0 -> q_x = (mD < leo[i] -> mD : leo[i])
       :: else ->
            endForEpoch(i, mC);
            if
            :: q_ep == mC -> q_x = (q_off < mD -> q_off : mD)
            :: else -> q_x = q_off
            fi
       fi;
#endif
       /* a committed entry is never truncated (Kafka throws below the HW) */
       CommittedEntriesNeverLost = 1;
       for (q_t2 : 0 .. MAXLOG-1) {
         if
         :: (q_t2 >= q_x && q_t2 < leo[i] && gCommit[q_t2] != 0 &&
             LG(i, q_t2) == gCommit[q_t2]) -> CommittedEntriesNeverLost = 0
         :: else -> skip
         fi
       }
       assert(CommittedEntriesNeverLost);
       for (q_t2 : 0 .. MAXLOG-1) {
         if
         :: q_t2 >= q_x -> LG(i, q_t2) = 0
         :: else -> skip
         fi
       }
       leo[i] = q_x; dirty = 1;
#ifdef BROKEN_NAIVE_TRUNCATE
       /* BROKEN: take the HW from the diverging response, as from a normal one */
       q_x = (mD < leo[i] -> mD : leo[i]);
       CommittedEntriesNeverLost = 1;
       for (q_t2 : 0 .. MAXLOG-1) {
         if
         :: q_t2 < q_x && (gCommit[q_t2] == 0 || LG(i, q_t2) != gCommit[q_t2]) -> CommittedEntriesNeverLost = 0
         :: else -> skip
         fi
       }
       assert(CommittedEntriesNeverLost);
#endif
       fetched[i] = 1
  :: else -> skip
  fi;
  q_x = 0; q_ep = 0; q_off = 0; q_le = 0
}

/* deliver entry m's copy to node r */
inline deliver(m, r) {
  mT = M_TYPE(m); mS = M_SRC(m); mR = r; mE = M_EP(m);
  mA = M_A(m); mB = M_B(m); mC = M_C(m); mD = M_D(m);
  if
  :: mT == VOTE_REQ    -> handleVoteRequest(mR)
  :: mT == VOTE_RESP   -> handleVoteResponse(mR)
  :: mT == BEGIN_EPOCH -> handleBeginQuorumEpoch(mR)
  :: mT == END_EPOCH   -> handleEndQuorumEpoch(mR)
  :: mT == FETCH_REQ   -> handleFetchRequest(mR)
  :: mT == FETCH_RESP  -> handleFetchResponse(mR)
  :: mT == FETCH_DIV   -> handleFetchDiverging(mR)
  fi;
  mT = 0; mS = 0; mR = 0; mE = 0; mA = 0; mB = 0; mC = 0; mD = 0
}

/* ================================================================ node events */

/* onElectionTimeout (Unattached, Voted, Candidate, Resigned) or the fetch timeout (Follower) */
#define CAN_TIMEOUT(i) ((role[i] == UNATTACHED || role[i] == VOTED || role[i] == FOLLOWER || \
                         role[i] == CANDIDATE || role[i] == RESIGNED) && epoch[i] < MAXEPOCH)

/* a Prospective's election timeout: back to Follower if it knows the leader, else to
 * Unattached (Voted if it has voted) -- Kafka ProspectiveState */
inline prospectiveTimeout(i) {
  if
  :: leader[i] != NONE && leader[i] != i -> role[i] = FOLLOWER
  :: (leader[i] == NONE || leader[i] == i) && voted[i] != NONE -> role[i] = VOTED
  :: (leader[i] == NONE || leader[i] == i) && voted[i] == NONE -> role[i] = UNATTACHED
  fi;
  clearVolatile(i)
}

/* checkQuorum (no fetch from a majority within 1.5 x fetch timeout) or a graceful
 * shutdown: resign and send EndQuorumEpoch. Always safe, so allowed at any time. */
inline resign(i) {
  role[i] = RESIGNED;
  clearVolatile(i);
  BCAST(END_EPOCH, i, epoch[i], 0, 0, 0)
}

/* propose(records) on the leader: append one client entry */
inline clientAppend(i) {
  LG(i, leo[i]) = epoch[i]; leo[i]++; dirty = 1;
  updateHighWatermark(i)
}

/* the follower's fetch loop: Fetch(FetchOffset = end offset, LastFetchedEpoch), at any
 * time: Kafka re-sends after the request timeout, so older Fetches (and their responses)
 * may still be in flight and arrive after newer ones */
inline sendFetch(i) {
  lastEpochOf(i, q_le);
  SEND(FETCH_REQ, i, leader[i], epoch[i], leo[i], q_le, 0, 0);
  q_le = 0
}

/* crash + restart: the durable state stays, the role is rebuilt from quorum-state.
 * Kafka QuorumState.initialize: leaderId == self -> Resigned; another leader -> Follower;
 * voted -> Unattached+voted; else Unattached. The HW is unknown after a restart. */
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
  clearVolatile(i)
}

/* ================================================================ symmetry reduction */
#ifdef SYMMETRY
/* Exact symmetry reduction: the protocol treats node ids alike, so after every event the
 * state is replaced by the smallest of its 6 images under renamings of the nodes. Every
 * field indexed by a node or holding a node id is renamed, the network re-sorted. The
 * invariants are symmetric, so no violation can be missed. Off for the broken variants:
 * their trails must replay in spin's simulator, which does not run C code. */
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
    d->fetched[q] = s->fetched[i];
    m = 0;
    for (j = 0; j < N; j++) if (s->granted[i] & (1 << j)) m |= 1 << p[j];
    d->granted[q] = m;
    for (j = 0; j < N; j++) d->matchEnd[q*N + p[j]] = s->matchEnd[i*N + j];
    d->gVote[q] = SYM_ID(p, s->gVote[i]);
#ifdef BROKEN_VOTE_NOT_PERSISTED
    d->pVoted[q] = SYM_ID(p, s->pVoted[i]);
#endif
  }
  for (k = 0; k <= MAXEPOCH; k++) d->gLeader[k] = SYM_ID(p, s->gLeader[k]);
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
}
c_code {
/* a node's renaming-invariant signature; the canonical image orders nodes by it, and only
 * ties (rare) are broken by comparing whole images */
static unsigned long long sym_key(const State *s, int i) {
  unsigned long long k = s->epoch[i];
  int j;
  k = k * 8 + s->role[i];
  k = k * 8 + s->leo[i];
  for (j = 0; j < MAXLOG; j++) k = k * 8 + s->lg[i*MAXLOG + j];
  k = k * 8 + s->hw[i];
  k = k * 2 + s->fetched[i];
  k = k * 4 + (s->voted[i] == i ? 1 : s->voted[i] == NONE ? 0 : 2);
  k = k * 4 + (s->leader[i] == i ? 1 : s->leader[i] == NONE ? 0 : 2);
  k = k * 4 + (s->gVote[i] == i ? 1 : s->gVote[i] == NONE ? 0 : 2);
  return k;
}
}
c_code {
static void sym_canon(void) {
  static State best, img;
  unsigned long long key[N];
  int x, q, found = 0, ok;
  unsigned long n = __builtin_offsetof(State, sv);
  for (q = 0; q < N; q++) key[q] = sym_key(&now, q);
  for (x = 0; x < 6; x++) {
    const int *p = symPerm[x];
    int inv[N];
    for (q = 0; q < N; q++) inv[p[q]] = q;          /* inv[pos] = old node at pos */
    ok = 1;
    for (q = 0; q + 1 < N; q++) if (key[inv[q]] > key[inv[q+1]]) ok = 0;
    if (!ok) continue;
    if (x == 0) { memcpy(&img, &now, n); }
    else { memcpy(&img, &now, n); sym_rename(&img, &now, p); }
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

/* one protocol event; then lose dead copies, check the state invariants if the event
 * changed anything they read (a log, a leader's HW, the committed ghost, a new leader), and
 * canonicalise under symmetry */
#define STEP(guard, body) d_step { guard -> body; gcNet(); \
  if :: dirty -> check_invariants(); dirty = 0 :: else -> skip fi; CANON }

#define NODE_EVENTS(i) \
  :: STEP(CAN_TIMEOUT(i), becomeProspective(i)) \
  :: STEP(role[i] == PROSPECTIVE, prospectiveTimeout(i)) \
  :: STEP(RESIGN && role[i] == LEADER, resign(i)) \
  :: STEP(CLIENT && role[i] == LEADER && leo[i] < MAXLOG, clientAppend(i)) \
  :: STEP(role[i] == FOLLOWER, sendFetch(i)) \
  :: STEP(crashLeft > 0, crashLeft = (crashLeft == 255 -> 255 : crashLeft - 1); crash(i))

#define HAS(k, r) (net[k] != 0 && (M_DSTS(net[k]) & (1 << (r))))

/* node r's copy of entry k: delivered (taken), delivered as a duplicate (stays), lost */
#define COPY_EVENTS(k, r) \
  :: STEP(HAS(k, r), q_cur = net[k]; takeCopy(k, r); deliver(q_cur, r); q_cur = 0) \
  :: STEP(HAS(k, r) && dupLeft > 0, dupLeft--; q_cur = net[k]; deliver(q_cur, r); q_cur = 0) \
  :: STEP(HAS(k, r), takeCopy(k, r))

#define NET_EVENTS(k) COPY_EVENTS(k, 0) COPY_EVENTS(k, 1) COPY_EVENTS(k, 2)

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
  od
}
