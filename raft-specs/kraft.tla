------------------------------- MODULE kraft -------------------------------
(***************************************************************************)
(* Fjord's KRaft core (Sources/FjordRaft/RaftCore.swift) as a TLA+         *)
(* specification, for readers. The same protocol is model-checked with     *)
(* SPIN in kraft.pml (see README.md); this module states it at the level   *)
(* of the Swift functions, with the safety properties as invariants named  *)
(* like the simulation's (Sources/FjordSimulation/Simulation.swift).       *)
(*                                                                         *)
(* Scope: a static set of voters, no observers, no snapshots.              *)
(*                                                                         *)
(* One action is one call into the sans-I/O core (tick, receive, propose)  *)
(* together with the shell's execution of the RaftReady it returns:        *)
(* quorum-state is written and the log flushed before the messages leave,  *)
(* so after every action the log is durable and the leader's              *)
(* flushedEndOffset is its end offset. Time is not modelled: every timer   *)
(* may fire whenever its role allows. The network loses, reorders and      *)
(* duplicates: msgs is a set, a delivery leaves the message in it, and     *)
(* Lose removes it.                                                        *)
(*                                                                         *)
(* Offsets are 0-based as in Kafka; log[n] is a sequence of epochs, so the *)
(* record at offset o is log[n][o + 1]. Epoch 0 is "none" (-1 in Swift):   *)
(* records carry epochs >= 1.                                              *)
(*                                                                         *)
(* Unlike kraft.pml, this module keeps every message the core exchanges    *)
(* (BeginQuorumEpoch, EndQuorumEpoch and their answers, Fetch error        *)
(* answers, Vote refusals) and the prospective node's refusals, so the     *)
(* KIP-996 paths of handleVoteResponse appear as they are in Swift: a      *)
(* refusal majority sends a Prospective back to the leader it followed,    *)
(* and a Vote answer naming the leader of its epoch makes one that knew no *)
(* leader follow it. README.md maps every action to its Swift function.    *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets

CONSTANTS
    Voter,      \* the node ids of controller.quorum.voters
    Nil,        \* "no node" (-1 in Swift); not a voter
    MaxEpoch,   \* bounds for model checking: no node stands for an epoch beyond,
    MaxLog      \* and no log grows beyond MaxLog records

ASSUME Nil \notin Voter /\ MaxEpoch \in Nat /\ MaxLog \in Nat

Majority == Cardinality(Voter) \div 2 + 1
IsQuorum(S) == Cardinality(S) >= Majority

Roles == {"Unattached", "Voted", "Prospective", "Candidate", "Leader",
          "Follower", "Resigned"}

VARIABLES
    (* durable: quorum-state (ElectionState) and the log *)
    epoch,        \* epoch[n]: ElectionState.epoch
    votedId,      \* votedId[n]: ElectionState.votedId (Nil = -1)
    leaderId,     \* leaderId[n]: ElectionState.leaderId (Nil = -1)
    log,          \* log[n]: Seq of record epochs
    (* volatile: RaftNode's fields, rebuilt by RaftNode.init after a crash *)
    role,         \* role[n] \in Roles
    hw,           \* hw[n]: highWatermark (0 after a restart)
    grants,       \* grants[n]: voters that granted the current (pre-)vote
    rejections,   \* rejections[n]: voters that refused it
    replicaEnd,   \* replicaEnd[n][v]: leader n's replicas[v].endOffset (-1 = unknown)
    inflight,     \* inflight[n]: the fetchId of the follower's in-flight Fetch (0 = none)
    (* the network and the fetch-id source *)
    msgs,         \* messages in flight
    nextFetchId,  \* fetch ids are never reused (an answer to an earlier Fetch -- even of
                  \* an earlier process incarnation -- is never taken for a later one's)
    (* ghosts, read only by the properties *)
    committed,    \* committed[o]: epoch of the committed record at offset o (0 = none yet)
    committedAt,  \* committedAt[o]: epoch of the node whose HW first covered o
    leaders,      \* every <<epoch, node>> such that node became leader of epoch
    votesCast     \* every vote ever cast: <<voter, epoch, candidate>>

durable  == <<epoch, votedId, leaderId, log>>
volatile == <<role, hw, grants, rejections, replicaEnd, inflight>>
ghosts   == <<committed, committedAt, leaders, votesCast>>
vars     == <<durable, volatile, msgs, nextFetchId, ghosts>>
\* what maybeTransition may change
roleVars == <<epoch, votedId, leaderId, role, grants, rejections, replicaEnd, inflight>>

Offsets == 0 .. (MaxLog - 1)
Epochs  == 0 .. MaxEpoch

-----------------------------------------------------------------------------
(* Log helpers (RaftLog) *)

Max(S) == CHOOSE x \in S : \A y \in S : y <= x

\* RaftLog.endOffset
EndOffset(n) == Len(log[n])

\* RaftLog.lastFetchedEpoch (0 for an empty log)
LastEpoch(n) == IF log[n] = <<>> THEN 0 ELSE log[n][Len(log[n])]

\* RaftLog.endOffset(forEpoch: e) of sequence l: the largest epoch <= e in l and the
\* offset where it ends; <<0, 0>> if none ((-1, -1) in Swift, mapped to offset 0).
EndForEpoch(l, e) ==
    LET idx == {i \in 1 .. Len(l) : l[i] <= e}
    IN  IF idx = {} THEN <<0, 0>> ELSE <<l[Max(idx)], Max(idx)>>

\* RaftNode.isUpToDate: a candidate's log (lastEpoch, lastOffset) is at least as up to
\* date as node n's
UpToDate(n, lastEpoch, lastOffset) ==
    \/ lastEpoch > LastEpoch(n)
    \/ lastEpoch = LastEpoch(n) /\ lastOffset >= EndOffset(n)

\* the leader's epochStartOffset: where its LeaderChange record sits
EpochStart(n) == CHOOSE o \in 0 .. Len(log[n]) :
                     /\ \A i \in 1 .. o : log[n][i] # epoch[n]
                     /\ (o = Len(log[n]) \/ log[n][o + 1] = epoch[n])

\* the k-th largest of a finite set of naturals given as a function over Voter
KthLargest(f, k) ==
    CHOOSE x \in {f[v] : v \in Voter} :
        /\ Cardinality({v \in Voter : f[v] >= x}) >= k
        /\ Cardinality({v \in Voter : f[v] > x}) < k

Send(m) == msgs' = msgs \cup {m}

-----------------------------------------------------------------------------
(* Helpers that return node n's new volatile/durable values; actions combine them. *)

NoReplicas == [v \in Voter |-> -1]

\* a node stops being a follower or leader: drop the in-flight Fetch and leader state
Reset(n) ==
    /\ grants' = [grants EXCEPT ![n] = {}]
    /\ rejections' = [rejections EXCEPT ![n] = {}]
    /\ replicaEnd' = [replicaEnd EXCEPT ![n] = NoReplicas]
    /\ inflight' = [inflight EXCEPT ![n] = 0]

\* RaftNode.becomeUnattached(e): persist (e, -1, -1)
BecomeUnattached(n, e) ==
    /\ epoch' = [epoch EXCEPT ![n] = e]
    /\ votedId' = [votedId EXCEPT ![n] = Nil]
    /\ leaderId' = [leaderId EXCEPT ![n] = Nil]
    /\ role' = [role EXCEPT ![n] = "Unattached"]
    /\ Reset(n)

\* RaftNode.becomeFollower(e, l): persist (e, votedId if e is the current epoch, l).
\* (Swift then sends the first Fetch at once; here SendFetch does, as after any tick.)
BecomeFollower(n, e, l) ==
    /\ epoch' = [epoch EXCEPT ![n] = e]
    /\ votedId' = [votedId EXCEPT ![n] = IF e = epoch[n] THEN votedId[n] ELSE Nil]
    /\ leaderId' = [leaderId EXCEPT ![n] = l]
    /\ role' = [role EXCEPT ![n] = "Follower"]
    /\ Reset(n)

\* RaftNode.maybeTransition(epoch: e, leader: l), as the whole effect of a message that
\* carries only an (epoch, leaderId) fact. Enabled only if it changes something.
MaybeTransition(n, e, l) ==
    \/ /\ e > epoch[n]
       /\ IF l # Nil /\ l # n THEN BecomeFollower(n, e, l) ELSE BecomeUnattached(n, e)
    \/ /\ e = epoch[n] /\ l # Nil /\ l # n
       /\ ~(role[n] = "Follower" /\ leaderId[n] = l)
       /\ role[n] \notin {"Leader", "Resigned"}
       /\ BecomeFollower(n, e, l)

\* maybeTransition where it may change nothing (then the node's state stays)
ChangesOnTransition(n, e, l) ==
    \/ e > epoch[n]
    \/ /\ e = epoch[n] /\ l # Nil /\ l # n
       /\ ~(role[n] = "Follower" /\ leaderId[n] = l)
       /\ role[n] \notin {"Leader", "Resigned"}

MaybeTransitionOrStay(n, e, l) ==
    IF ChangesOnTransition(n, e, l) THEN MaybeTransition(n, e, l)
    ELSE UNCHANGED roleVars

\* the node's high watermark moves to x (RaftReady.newHighWatermark); the ghost records
\* what is committed, as Simulation.noteHighWatermark does
AdvanceHW(n, x, l) ==      \* l: node n's log after the step
    /\ hw' = [hw EXCEPT ![n] = x]
    /\ committed' = [o \in Offsets |->
                        IF o < x /\ committed[o] = 0 THEN l[o + 1] ELSE committed[o]]
    /\ committedAt' = [o \in Offsets |->
                        IF o < x /\ committed[o] = 0 THEN epoch[n] ELSE committedAt[o]]

\* RaftNode.updateHighWatermark at leader n with log l and replica offsets re: the
\* Majority-th largest of (its flushed end offset, the replicas' fetch offsets), taken if
\* it covers the epoch start offset and exceeds the current HW
NewHW(n, l, re) ==
    LET x == KthLargest([v \in Voter |-> IF v = n THEN Len(l) ELSE re[v]], Majority)
    IN  IF x > EpochStart(n) /\ x > hw[n] THEN x ELSE hw[n]

UpdateHighWatermark(n, l, re) ==
    IF NewHW(n, l, re) > hw[n]
    THEN AdvanceHW(n, NewHW(n, l, re), l)
    ELSE UNCHANGED <<hw, committed, committedAt>>

-----------------------------------------------------------------------------
(* Elections *)

\* a Prospective that followed a leader of its epoch before it stood (KIP-996)
KnowsLeader(n) == leaderId[n] \notin {Nil, n}

\* tick: the election timeout (Unattached, Voted, Prospective, Candidate, Resigned) or the
\* fetch timeout (Follower) -> RaftNode.becomeProspective: nothing persisted; pre-vote
\* (KIP-996) for epoch + 1 to every other voter. A Prospective that knows its epoch's
\* leader goes back to it instead (ReturnToKnownLeader).
BecomeProspective(n) ==
    /\ role[n] # "Leader"
    /\ ~(role[n] = "Prospective" /\ KnowsLeader(n))
    /\ epoch[n] < MaxEpoch
    /\ role' = [role EXCEPT ![n] = "Prospective"]
    /\ grants' = [grants EXCEPT ![n] = {n}]
    /\ rejections' = [rejections EXCEPT ![n] = {}]
    /\ replicaEnd' = [replicaEnd EXCEPT ![n] = NoReplicas]
    /\ inflight' = [inflight EXCEPT ![n] = 0]
    /\ msgs' = msgs \cup
          {[type |-> "VoteRequest", src |-> n, dst |-> v, candidateEpoch |-> epoch[n] + 1,
            preVote |-> TRUE, lastEpoch |-> LastEpoch(n), lastOffset |-> EndOffset(n)]
           : v \in Voter \ {n}}
    /\ UNCHANGED <<durable, hw, nextFetchId, ghosts>>

\* tick: the election timeout of a Prospective that followed this epoch's leader before it
\* stood -> RaftNode.returnToKnownLeader -> becomeFollower(epoch, leaderId) (KIP-996: the
\* others most likely still hear from that leader). Its lost pre-vote election does the
\* same (HandleVoteResponse).
ReturnToKnownLeader(n) ==
    /\ role[n] = "Prospective" /\ KnowsLeader(n)
    /\ BecomeFollower(n, epoch[n], leaderId[n])
    /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>

\* tick: the request timeout of a Prospective or Candidate re-sends its Vote request to
\* the voters that have neither granted nor refused (RaftNode.sendVoteRequests)
ResendVote(n) ==
    /\ role[n] \in {"Prospective", "Candidate"}
    /\ LET pre == role[n] = "Prospective"
       IN  msgs' = msgs \cup
              {[type |-> "VoteRequest", src |-> n, dst |-> v,
                candidateEpoch |-> IF pre THEN epoch[n] + 1 ELSE epoch[n], preVote |-> pre,
                lastEpoch |-> LastEpoch(n), lastOffset |-> EndOffset(n)]
               : v \in Voter \ ({n} \cup grants[n] \cup rejections[n])}
    /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>

\* RaftNode.becomeCandidate: persist (epoch + 1, self, -1), then standard Vote requests
BecomeCandidate(n) ==
    /\ epoch' = [epoch EXCEPT ![n] = epoch[n] + 1]
    /\ votedId' = [votedId EXCEPT ![n] = n]
    /\ leaderId' = [leaderId EXCEPT ![n] = Nil]
    /\ role' = [role EXCEPT ![n] = "Candidate"]
    /\ grants' = [grants EXCEPT ![n] = {n}]
    /\ rejections' = [rejections EXCEPT ![n] = {}]
    /\ votesCast' = votesCast \cup {<<n, epoch[n] + 1, n>>}
    /\ msgs' = msgs \cup
          {[type |-> "VoteRequest", src |-> n, dst |-> v, candidateEpoch |-> epoch[n] + 1,
            preVote |-> FALSE, lastEpoch |-> LastEpoch(n), lastOffset |-> EndOffset(n)]
           : v \in Voter \ {n}}
    /\ UNCHANGED <<log, hw, replicaEnd, inflight, nextFetchId, committed, committedAt, leaders>>

\* RaftNode.becomeLeader: persist leaderId = self, append the LeaderChange control record
\* at epochStartOffset = end offset, BeginQuorumEpoch to the others. If the log cannot
\* take the record (here: it is full) Swift resigns at once.
BecomeLeader(n) ==
    /\ leaderId' = [leaderId EXCEPT ![n] = n]
    /\ leaders' = leaders \cup {<<epoch[n], n>>}
    /\ grants' = [grants EXCEPT ![n] = {}]
    /\ rejections' = [rejections EXCEPT ![n] = {}]
    /\ replicaEnd' = [replicaEnd EXCEPT ![n] = NoReplicas]
    /\ IF Len(log[n]) < MaxLog
       THEN /\ role' = [role EXCEPT ![n] = "Leader"]
            /\ log' = [log EXCEPT ![n] = Append(log[n], epoch[n])]
            /\ msgs' = msgs \cup {[type |-> "BeginQuorumEpoch", src |-> n, dst |-> v,
                                   leaderEpoch |-> epoch[n]] : v \in Voter \ {n}}
       ELSE /\ role' = [role EXCEPT ![n] = "Resigned"]
            /\ UNCHANGED log
            /\ msgs' = msgs \cup {[type |-> "EndQuorumEpoch", src |-> n, dst |-> v,
                                   leaderEpoch |-> epoch[n]] : v \in Voter \ {n}}
    /\ UNCHANGED <<epoch, votedId, hw, inflight, nextFetchId, committed, committedAt, votesCast>>

\* RaftNode.handleVoteRequest at n
HandleVoteRequest(n, m) ==
    /\ m.type = "VoteRequest" /\ m.dst = n
    /\ LET c == m.src
           ok == UpToDate(n, m.lastEpoch, m.lastOffset)
           Respond(e, l, granted) ==
               Send([type |-> "VoteResponse", src |-> n, dst |-> c, leaderEpoch |-> e,
                     leaderId |-> l, granted |-> granted, requestEpoch |-> m.candidateEpoch,
                     preVote |-> m.preVote])
       IN
       \/ \* an older epoch: refused, with our epoch and leader
          /\ m.candidateEpoch < epoch[n]
          /\ Respond(epoch[n], leaderId[n], FALSE)
          /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>
       \/ \* pre-vote: no state change; refused while a leader is known to be alive. A
          \* Leader is; a Follower is if it heard from its leader within fetch.timeout,
          \* which is time: both answers are possible.
          /\ m.preVote /\ m.candidateEpoch >= epoch[n]
          /\ \E alive \in BOOLEAN :
                 /\ role[n] = "Leader" => alive
                 /\ role[n] \notin {"Leader", "Follower"} => ~alive
                 /\ Respond(epoch[n], leaderId[n], ~alive /\ ok)
          /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>
       \/ \* standard vote: a higher epoch first moves us to Unattached there (persisted)
          /\ ~m.preVote /\ m.candidateEpoch >= epoch[n]
          /\ LET e       == m.candidateEpoch
                 voted0  == IF e > epoch[n] THEN Nil ELSE votedId[n]
                 leader0 == IF e > epoch[n] THEN Nil ELSE leaderId[n]
                 canVote == (voted0 = Nil \/ voted0 = c) /\ leader0 = Nil
             IN
             /\ epoch' = [epoch EXCEPT ![n] = e]
             /\ leaderId' = [leaderId EXCEPT ![n] = leader0]
             /\ IF canVote /\ ok
                THEN \* persist (e, c) before the grant leaves
                     /\ votedId' = [votedId EXCEPT ![n] = c]
                     /\ role' = [role EXCEPT ![n] = "Voted"]
                     /\ votesCast' = votesCast \cup {<<n, e, c>>}
                     /\ Reset(n)
                     /\ Respond(e, Nil, TRUE)
                ELSE /\ votedId' = [votedId EXCEPT ![n] = voted0]
                     /\ IF e > epoch[n]
                        THEN /\ role' = [role EXCEPT ![n] = "Unattached"]
                             /\ Reset(n)
                        ELSE UNCHANGED <<role, grants, rejections, replicaEnd, inflight>>
                     /\ UNCHANGED votesCast
                     /\ Respond(e, leader0, FALSE)
             /\ UNCHANGED <<log, hw, nextFetchId, committed, committedAt, leaders>>

\* RaftNode.handleVoteResponse at n
HandleVoteResponse(n, m) ==
    /\ m.type = "VoteResponse" /\ m.dst = n
    /\ LET isPre    == m.preVote /\ role[n] = "Prospective" /\ m.requestEpoch = epoch[n] + 1
           isStd    == ~m.preVote /\ role[n] = "Candidate" /\ m.requestEpoch = epoch[n]
           \* KIP-996: a voter names this epoch's leader, which we did not know
           hint     == /\ isPre /\ m.leaderEpoch = epoch[n]
                       /\ m.leaderId \notin {Nil, n} /\ leaderId[n] = Nil
           g        == IF m.granted THEN grants[n] \cup {m.src} ELSE grants[n]
           r        == IF m.granted THEN rejections[n] ELSE rejections[n] \cup {m.src}
           \* the pre-vote election is lost: a majority refused
           lost     == Cardinality(Voter) - Cardinality(r) < Majority
           Count    == /\ grants' = [grants EXCEPT ![n] = g]
                       /\ rejections' = [rejections EXCEPT ![n] = r]
                       /\ UNCHANGED <<durable, role, hw, replicaEnd, inflight, msgs,
                                      nextFetchId, ghosts>>
       IN
       \/ \* a higher epoch: only maybeTransition
          /\ m.leaderEpoch > epoch[n]
          /\ MaybeTransition(n, m.leaderEpoch, m.leaderId)
          /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>
       \/ \* follow the leader the voter names (its answer is not counted)
          /\ hint
          /\ BecomeFollower(n, epoch[n], m.leaderId)
          /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>
       \/ \* a pre-vote answer: a majority of grants makes us a candidate; a majority of
          \* refusals sends us back to the leader we followed, if we knew one
          /\ m.leaderEpoch <= epoch[n] /\ isPre /\ ~hint
          /\ IF IsQuorum(g) THEN BecomeCandidate(n)
             ELSE IF lost /\ KnowsLeader(n)
             THEN /\ BecomeFollower(n, epoch[n], leaderId[n])
                  /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>
             ELSE Count
       \/ \* a standard vote answer: a majority of grants makes us the leader
          /\ m.leaderEpoch <= epoch[n] /\ isStd
          /\ IF IsQuorum(g) THEN BecomeLeader(n) ELSE Count

\* RaftNode.handleBeginQuorumEpoch and handleEndQuorumEpoch at n: maybeTransition, then
\* answer with our (new) epoch and leader. EndQuorumEpoch to a follower of the resigning
\* leader only shortens its fetch timeout (time): no state change.
HandleEpochRequest(n, m) ==
    /\ m.type \in {"BeginQuorumEpoch", "EndQuorumEpoch"} /\ m.dst = n
    /\ IF m.type = "BeginQuorumEpoch"
       THEN IF m.leaderEpoch >= epoch[n] THEN MaybeTransitionOrStay(n, m.leaderEpoch, m.src)
            ELSE UNCHANGED roleVars
       ELSE IF role[n] = "Follower" /\ leaderId[n] = m.src /\ m.leaderEpoch = epoch[n]
            THEN UNCHANGED roleVars
            ELSE MaybeTransitionOrStay(n, m.leaderEpoch, Nil)
    /\ Send([type |-> "EpochResponse", src |-> n, dst |-> m.src,
             leaderEpoch |-> epoch'[n], leaderId |-> leaderId'[n]])
    /\ UNCHANGED <<log, hw, nextFetchId, ghosts>>

\* the answers to BeginQuorumEpoch and EndQuorumEpoch: maybeTransition
HandleEpochResponse(n, m) ==
    /\ m.type = "EpochResponse" /\ m.dst = n
    /\ ChangesOnTransition(n, m.leaderEpoch, m.leaderId)
    /\ MaybeTransition(n, m.leaderEpoch, m.leaderId)
    /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>

\* tick: check-quorum (no fetch from a majority within 1.5 x fetch.timeout) ->
\* RaftNode.becomeResigned: EndQuorumEpoch to the others. Time is not modelled: a leader
\* may resign at any moment.
Resign(n) ==
    /\ role[n] = "Leader"
    /\ role' = [role EXCEPT ![n] = "Resigned"]
    /\ replicaEnd' = [replicaEnd EXCEPT ![n] = NoReplicas]
    /\ msgs' = msgs \cup {[type |-> "EndQuorumEpoch", src |-> n, dst |-> v,
                           leaderEpoch |-> epoch[n]] : v \in Voter \ {n}}
    /\ UNCHANGED <<durable, hw, grants, rejections, inflight, nextFetchId, ghosts>>

\* tick: RaftNode.resendBeginQuorumEpoch -- the leader re-sends BeginQuorumEpoch to the
\* voters that have not fetched yet (after the request timeout)
ResendBegin(n) ==
    /\ role[n] = "Leader"
    /\ msgs' = msgs \cup {[type |-> "BeginQuorumEpoch", src |-> n, dst |-> v,
                           leaderEpoch |-> epoch[n]] : v \in {v \in Voter \ {n} : replicaEnd[n][v] = -1}}
    /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>

-----------------------------------------------------------------------------
(* Replication *)

\* RaftNode.propose: the leader appends a record (flushed), then persisted() ->
\* updateHighWatermark
Propose(n) ==
    /\ role[n] = "Leader" /\ Len(log[n]) < MaxLog
    /\ log' = [log EXCEPT ![n] = Append(log[n], epoch[n])]
    /\ UpdateHighWatermark(n, Append(log[n], epoch[n]), replicaEnd[n])
    /\ UNCHANGED <<epoch, votedId, leaderId, role, grants, rejections, replicaEnd, inflight,
                   msgs, nextFetchId, leaders, votesCast>>

\* tick -> maybeSendFetch -> RaftNode.sendFetch: a follower's Fetch replaces its
\* in-flight one (first fetch, or after the request timeout)
SendFetch(n) ==
    /\ role[n] = "Follower"
    /\ inflight' = [inflight EXCEPT ![n] = nextFetchId]
    /\ nextFetchId' = nextFetchId + 1
    /\ Send([type |-> "FetchRequest", src |-> n, dst |-> leaderId[n], epoch |-> epoch[n],
             fetchOffset |-> EndOffset(n), lastFetchedEpoch |-> LastEpoch(n),
             fetchId |-> nextFetchId])
    /\ UNCHANGED <<durable, role, hw, grants, rejections, replicaEnd, ghosts>>

\* RaftNode.handleFetchRequest at n
HandleFetchRequest(n, m) ==
    /\ m.type = "FetchRequest" /\ m.dst = n
    /\ LET f      == m.src
           base   == [type |-> "FetchResponse", src |-> n, dst |-> f, error |-> FALSE,
                      leaderEpoch |-> epoch[n], leaderId |-> leaderId[n],
                      highWatermark |-> hw[n], fetchOffset |-> m.fetchOffset,
                      fetchId |-> m.fetchId, divergingEpoch |-> 0, divergingEnd |-> -1,
                      records |-> <<>>]
           ee     == EndForEpoch(log[n], m.lastFetchedEpoch)
           valid  == \/ m.fetchOffset = 0 /\ m.lastFetchedEpoch = 0
                     \/ ee[1] = m.lastFetchedEpoch /\ ee[2] >= m.fetchOffset
           re     == [replicaEnd[n] EXCEPT ![f] = m.fetchOffset]
       IN
       \/ \* not the leader of that epoch: an error answer with our epoch and leader
          /\ ~(role[n] = "Leader" /\ m.epoch = epoch[n])
          /\ Send([base EXCEPT !.error = TRUE])
          /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>
       \/ \* diverging: DivergingEpoch = endOffset(forEpoch: lastFetchedEpoch) of our log
          /\ role[n] = "Leader" /\ m.epoch = epoch[n] /\ ~valid
          /\ Send([base EXCEPT !.divergingEpoch = ee[1], !.divergingEnd = ee[2]])
          /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>
       \/ \* valid: noteFetch, updateHighWatermark, then answer with the records from
          \* fetchOffset and the (new) high watermark
          /\ role[n] = "Leader" /\ m.epoch = epoch[n] /\ valid
          /\ replicaEnd' = [replicaEnd EXCEPT ![n] = re]
          /\ UpdateHighWatermark(n, log[n], re)
          /\ Send([base EXCEPT !.highWatermark = NewHW(n, log[n], re),
                               !.records = SubSeq(log[n], m.fetchOffset + 1, Len(log[n]))])
          /\ UNCHANGED <<durable, role, grants, rejections, inflight, nextFetchId, leaders,
                         votesCast>>

\* RaftNode.handleFetchResponse at follower n
HandleFetchResponse(n, m) ==
    /\ m.type = "FetchResponse" /\ m.dst = n
    /\ \/ \* an error answer, or one from a newer epoch or another leader of ours:
          \* maybeTransition
          /\ \/ m.error
             \/ m.leaderEpoch > epoch[n]
             \/ m.leaderEpoch = epoch[n] /\ ~(role[n] = "Follower" /\ leaderId[n] = m.leaderId)
          /\ MaybeTransition(n, m.leaderEpoch, m.leaderId)
          /\ UNCHANGED <<log, hw, msgs, nextFetchId, ghosts>>
       \/ \* the answer to our in-flight Fetch (fetchId), at our end offset
          /\ ~m.error
          /\ role[n] = "Follower" /\ leaderId[n] = m.src /\ m.leaderEpoch = epoch[n]
          /\ inflight[n] = m.fetchId /\ m.fetchOffset = EndOffset(n)
          /\ inflight' = [inflight EXCEPT ![n] = 0]
          /\ IF m.divergingEnd >= 0
             THEN \* truncate to min(divergingEndOffset, endOffset(forEpoch: divergingEpoch)
                  \* of our log); the HW does not move on this answer
                  LET local == EndForEpoch(log[n], m.divergingEpoch)
                      to    == IF local[1] = 0 THEN 0
                               ELSE IF m.divergingEnd < local[2] THEN m.divergingEnd ELSE local[2]
                  IN  /\ log' = [log EXCEPT ![n] = SubSeq(log[n], 1, to)]
                      /\ UNCHANGED <<hw, committed, committedAt>>
             ELSE \* append a non-empty prefix of the records (RaftLog.read returns whole
                  \* batches up to fetchMaxBytes), then HW = min(leader's HW, end offset)
                  \E k \in (IF m.records = <<>> THEN {0} ELSE 1 .. Len(m.records)) :
                     /\ log' = [log EXCEPT ![n] = log[n] \o SubSeq(m.records, 1, k)]
                     /\ LET l == log[n] \o SubSeq(m.records, 1, k)
                            x == IF m.highWatermark < Len(l) THEN m.highWatermark ELSE Len(l)
                        IN  IF x > hw[n] THEN AdvanceHW(n, x, l)
                            ELSE UNCHANGED <<hw, committed, committedAt>>
          /\ UNCHANGED <<epoch, votedId, leaderId, role, grants, rejections, replicaEnd, msgs,
                         nextFetchId, leaders, votesCast>>
          \* (Swift sends the next Fetch at once; SendFetch is enabled right away.)

-----------------------------------------------------------------------------
(* Faults *)

\* a crash and restart: durable state stays; RaftNode.init rebuilds the role from
\* quorum-state; HW 0; the in-flight Fetch is gone
Crash(n) ==
    /\ role' = [role EXCEPT ![n] =
                  IF leaderId[n] = n THEN "Resigned"
                  ELSE IF leaderId[n] # Nil THEN "Follower"
                  ELSE IF votedId[n] # Nil THEN "Voted"
                  ELSE "Unattached"]
    /\ hw' = [hw EXCEPT ![n] = 0]
    /\ Reset(n)
    /\ UNCHANGED <<durable, msgs, nextFetchId, ghosts>>

\* the network loses a message (a delivery never removes one: duplication)
Lose(m) ==
    /\ msgs' = msgs \ {m}
    /\ UNCHANGED <<durable, volatile, nextFetchId, ghosts>>

-----------------------------------------------------------------------------
(* The system *)

Init ==
    /\ epoch = [n \in Voter |-> 0]
    /\ votedId = [n \in Voter |-> Nil]
    /\ leaderId = [n \in Voter |-> Nil]
    /\ log = [n \in Voter |-> <<>>]
    /\ role = [n \in Voter |-> "Unattached"]
    /\ hw = [n \in Voter |-> 0]
    /\ grants = [n \in Voter |-> {}]
    /\ rejections = [n \in Voter |-> {}]
    /\ replicaEnd = [n \in Voter |-> NoReplicas]
    /\ inflight = [n \in Voter |-> 0]
    /\ msgs = {}
    /\ nextFetchId = 1
    /\ committed = [o \in Offsets |-> 0]
    /\ committedAt = [o \in Offsets |-> 0]
    /\ leaders = {}
    /\ votesCast = {}

Next ==
    \/ \E n \in Voter :
          \/ BecomeProspective(n)
          \/ ReturnToKnownLeader(n)
          \/ ResendVote(n)
          \/ Resign(n)
          \/ ResendBegin(n)
          \/ Propose(n)
          \/ SendFetch(n)
          \/ Crash(n)
    \/ \E m \in msgs :
          \/ Lose(m)
          \/ \E n \in Voter :
                \/ HandleVoteRequest(n, m)
                \/ HandleVoteResponse(n, m)
                \/ HandleEpochRequest(n, m)
                \/ HandleEpochResponse(n, m)
                \/ HandleFetchRequest(n, m)
                \/ HandleFetchResponse(n, m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Safety properties: the names of the simulation's invariants (and of kraft.pml's
   assertions). *)

\* one leader per epoch, over all time
ElectionSafety ==
    \A x, y \in leaders : x[1] = y[1] => x[2] = y[2]

\* one vote per voter and epoch, even across crashes
VoteDurability ==
    \A x, y \in votesCast : (x[1] = y[1] /\ x[2] = y[2]) => x[3] = y[3]

\* a committed record is held by a majority, every node's log below its HW is the
\* committed log, and every leader of the epoch it was committed in or a later one holds
\* it (the simulation's leader-completeness check reports under this name)
CommittedEntriesNeverLost ==
    /\ \A o \in Offsets : committed[o] # 0 =>
          IsQuorum({n \in Voter : Len(log[n]) > o /\ log[n][o + 1] = committed[o]})
    /\ \A n \in Voter, o \in Offsets : o < hw[n] =>
          (Len(log[n]) > o /\ log[n][o + 1] = committed[o])
    /\ \A n \in Voter, o \in Offsets :
          (role[n] = "Leader" /\ committed[o] # 0 /\ committedAt[o] <= epoch[n])
              => (Len(log[n]) > o /\ log[n][o + 1] = committed[o])

\* a majority of voters hold the leader's log below its HW
HighWatermarkMajority ==
    \A n \in Voter : (role[n] = "Leader" /\ hw[n] > 0) =>
        IsQuorum({v \in Voter : Len(log[v]) >= hw[n] /\
                                \A i \in 1 .. hw[n] : log[v][i] = log[n][i]})

\* logs are sorted by epoch, hold no epoch above their node's, and equal (offset, epoch)
\* means equal prefixes
LogMatching ==
    /\ \A n \in Voter, i \in 1 .. Len(log[n]) :
          /\ 1 <= log[n][i] /\ log[n][i] <= epoch[n]
          /\ i > 1 => log[n][i - 1] <= log[n][i]
    /\ \A a, b \in Voter, i \in 1 .. MaxLog :
          (i <= Len(log[a]) /\ i <= Len(log[b]) /\ log[a][i] = log[b][i])
              => \A j \in 1 .. i : log[a][j] = log[b][j]

\* a node's HW never moves back within one process incarnation (Crash resets it)
HighWatermarkMonotonic ==
    [][\A n \in Voter : hw'[n] >= hw[n] \/ Crash(n)]_vars

\* the persisted epoch never decreases
EpochMonotonic ==
    [][\A n \in Voter : epoch'[n] >= epoch[n]]_vars

TypeOK ==
    /\ epoch \in [Voter -> Epochs]
    /\ votedId \in [Voter -> Voter \cup {Nil}]
    /\ leaderId \in [Voter -> Voter \cup {Nil}]
    /\ role \in [Voter -> Roles]
    /\ hw \in [Voter -> Nat]
    /\ grants \in [Voter -> SUBSET Voter]
    /\ rejections \in [Voter -> SUBSET Voter]
    /\ inflight \in [Voter -> Nat]

Invariants == TypeOK /\ ElectionSafety /\ VoteDurability /\ CommittedEntriesNeverLost
              /\ HighWatermarkMajority /\ LogMatching

THEOREM Spec => []Invariants /\ HighWatermarkMonotonic /\ EpochMonotonic
=============================================================================
