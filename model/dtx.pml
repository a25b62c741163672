/*
 * dtx.pml: a Promela model of one one-shot TCC transaction of nest-dtx, checked exhaustively
 * with spin (issue 24). model/README.md says what is modelled, what is abstracted and why, and
 * how to run it; scripts/model-check.ts (npm run model) runs every check.
 *
 *   - the transaction row in Postgres (status, version, lease owner, lease, next attempt,
 *     branch statuses), written only by compare-and-set on the version the writer read;
 *   - 2 coordinator instances: instance 0 began the transaction and drives it; either claims it
 *     when it falls due (recovery); either may crash (memory lost) or be paused past its lease;
 *   - 2 participants (branches) behind the SDK's barrier (try / confirm / cancel);
 *   - a network that loses, duplicates and reorders calls and answers;
 *   - a finite budget of FAULTS faults (crash, pause, call or answer lost, duplicate delivery,
 *     a call timed out while still in flight), so that the transaction can end (liveness).
 *
 * Every transition names the code that implements it. The properties are the ltl formulas at
 * the end; a property that is about a step (not a state) sets a ghost flag when that step
 * breaks it, and its formula says the flag is never set. The printf lines only narrate a
 * counterexample when spin replays it (spin -t); the verifier does not run them.
 *
 * Compile-time switches (spin -D...):
 *   FAULTS=n          the fault budget (default 2)
 *   NO_ADMIN          leave out the operator's forced rollback (AdminService.rollback)
 *   ADMIN_RETRY       add the operator's "retry now" (AdminService.retry -> TransactionEngine.retryNow -> TransactionWriter.makeDue -> TransactionStore.makeDue)
 *   ADMIN_RETRY_OVER_LEASE  mutant (with ADMIN_RETRY): the retry takes the row from a live lease
 *   NO_FENCING        mutant: the store's writes do not compare the version
 *   NO_ANTI_HANGING   mutant: the barrier lets a try that comes after its cancel run
 *   NO_RETRY          mutant: an incomplete phase-2 round schedules no retry (next_attempt_at NULL)
 */

#ifndef FAULTS
#define FAULTS 2
#endif

#define NI 2            /* coordinator instances */
#define NB 2            /* branches (participants) */
#define NOBODY 2        /* lease_owner IS NULL */
#define IX(i, b) ((i) * NB + (b))

/* Global status (PROTOCOL.md 2; @nest-dtx/protocol GlobalStatus). */
#define ACTIVE 1
#define COMMITTING 2
#define ROLLING_BACK 3
#define COMMITTED 4
#define ROLLED_BACK 5
/* Branch status in the log (BranchStatus). */
#define PENDING 1
#define PREPARED 2
#define FAILED 3
#define B_COMMITTED 4
#define B_ROLLED_BACK 5
/* TCC phases (MODE_PHASES.tcc); also the index of a late call's bit in orph[]. */
#define TRY 1
#define CONFIRM 2
#define CANCEL 3
/* What a call came to at its caller (as machine.ts phase1AnswerOf / phase2AnswerOf read it). */
#define NOANS 0         /* nothing (yet): no answer in time is 'unknown' / 'transient' */
#define OK 1            /* 2xx */
#define REFUSED 2       /* 409: a try's business failure, or its refusal by anti-hanging */
/* The phase-1 row of a branch's barrier (barrier-rules.ts BarrierOrigin of slot phase1). */
#define EMPTY 0
#define BY_TRY 1        /* inserted by the try that ran */
#define BY_CANCEL 2     /* the marker of a cancel that came first (null compensation) */
/* The participant's business resource (what its try reserved). */
#define R_NONE 0
#define R_TRIED 1
#define R_CONFIRMED 2
#define R_CANCELLED 3
/* Where an instance is in driving the transaction. */
#define IDLE 0          /* not driving it (or crashed and restarted): only recovery claims */
#define P1_SEND 1       /* BranchPhasesProcessor.start, before callAll(try) */
#define P1_WAIT 2       /* the try calls are out, answers coming */
#define DECIDE_RB 3     /* holds a read of the row, about to write rolling_back (deadline / admin) */
#define P2_SEND 4       /* TransactionEngine.deliverPhase2, before callAll(confirm | cancel) */
#define P2_WAIT 5       /* the phase-2 calls are out, answers coming */
/* What next_attempt_at is (see DUE). */
#define N_NULL 0
#define N_DEADLINE 1
#define N_LEASE 2
#define N_NOW 3

/* ---------------- the transaction row (global_transactions + branches) ---------------- */
byte st = ACTIVE;       /* status */
byte ver = 1;           /* version: every write bumps it, every write compares it */
byte owner = 0;         /* lease_owner: instance 0 began the transaction with its lease */
bit leaseLive = 1;      /* lease_until > now() */
bit deadline = 0;       /* deadline <= now() */
byte nxt = N_DEADLINE;  /* next_attempt_at: the insert sets the deadline */
byte bst[NB] = PENDING; /* branches.status */

/*
 * A row is due (transaction.store.ts claimDue: next_attempt_at <= now()) when next_attempt_at is
 *  - the deadline (transactions.service.ts create: firstAttemptInMs = timeoutMs for a one-shot
 *    tcc) and the deadline has passed, whatever the lease of the instance running phase 1;
 *  - the end of a lease (claimDue and TransactionWriter.ownLease set it to lease_until) and
 *    the lease has run out;
 *  - a retry time (after an incomplete phase-2 round: lease NULL, retryDelayMs); its passing is
 *    folded into that write, since nothing else happens to the row meanwhile;
 * and never when it is NULL (terminal).
 */
#define DUE ((nxt == N_DEADLINE && deadline) || (nxt == N_LEASE && !leaseLive) || nxt == N_NOW)
#define TERMINAL (st == COMMITTED || st == ROLLED_BACK)

/* ---------------- each instance's memory (lost on a crash) ---------------- */
byte pc[NI];
byte lver[NI];          /* the version it read or wrote last: what its writes compare */
byte lst[NI];           /* the status it holds (LoadedTx.tx.status) */
byte lbst[NI * NB];     /* the branch statuses it holds */
bit held[NI];           /* its in-memory lease (LoadedTx.heldUntil) has CALL_TIMEOUT_MS left */
byte rph[NI];           /* the phase of its current round of calls */
bit live[NI * NB];      /* that round's call to the branch is in the network, the caller waiting */
byte got[NI * NB];      /* the answer the caller got */
bit lost[NI * NB];      /* the call or its answer was lost: the caller's time-out will come */
/* A branch is settled for its caller when it was not called, answered, or lost (time-out):
   a call out has live set until it is delivered (got, or lost for a lost answer) or lost. */
#define ANSWERED(i, b) (!live[IX(i, b)] || got[IX(i, b)] != NOANS || lost[IX(i, b)])
#define COMPLETE(i) (ANSWERED(i, 0) && ANSWERED(i, 1))

/* ---------------- each participant's database (dtx_barrier rows + business) ---------------- */
byte slot1[NB];         /* phase-1 barrier row: EMPTY, BY_TRY, BY_CANCEL */
bit slotC[NB];          /* commit (confirm) barrier row */
bit slotR[NB];          /* rollback (cancel) barrier row: the branch's cancel is recorded */
byte res[NB];           /* the business resource */

/* Calls in the network whose caller no longer waits (it timed out or crashed): a set, bit b*4+phase. */
bit orph[NB * 4];

byte faults = FAULTS;   /* the fault budget */
#ifndef NO_ADMIN
bit adminLeft = 1;
#endif
#ifdef ADMIN_RETRY
bit retryLeft = 1;
#ifdef ADMIN_RETRY_OVER_LEASE
#define RETRY_MAY_TAKE (true)                            /* mutant: takes the row from a live lease */
#else
#define RETRY_MAY_TAKE (owner == NOBODY || !leaseLive)   /* makeDue: lease_owner IS NULL OR lease_until <= now() */
#endif
#endif

/* ---------------- ghosts for the properties ---------------- */
bit everCommitting = 0;  /* the row was ever committing */
bit everRollingBack = 0; /* the row was ever rolling_back */
bit badMove = 0;         /* a write moved the row in a way PROTOCOL.md 2 does not allow */
bit badPhase2 = 0;       /* a confirm or cancel ran on a resource its try had not reserved */
bit staleSend = 0;       /* a phase-2 call went out from an instance not holding the row's lease */
bit stuck = 0;           /* nothing could move any more, and the transaction had not ended */

#ifdef NO_FENCING
#define FENCED(i) (true)           /* mutant: UPDATE ... WHERE gid = $1, without the version */
#else
#define FENCED(i) (ver == lver[i]) /* transaction.store.ts apply: WHERE t.version = a.expected */
#endif

#define DONE_FOR(s) ((s) == COMMITTING -> B_COMMITTED : B_ROLLED_BACK)

/* The moves PROTOCOL.md 2 allows (state-machine.ts TWO_PHASE_MOVES, isAllowedMove), or none. */
#define ALLOWED(from, to) ((from) == (to) \
  || ((from) == ACTIVE && ((to) == COMMITTING || (to) == ROLLING_BACK)) \
  || ((from) == COMMITTING && (to) == COMMITTED) \
  || ((from) == ROLLING_BACK && (to) == ROLLED_BACK))

inline say_status(s) {
  if
  :: s == ACTIVE -> printf("active")
  :: s == COMMITTING -> printf("committing")
  :: s == ROLLING_BACK -> printf("rolling_back")
  :: s == COMMITTED -> printf("committed")
  :: s == ROLLED_BACK -> printf("rolled_back")
  fi
}

inline say_phase(p) {
  if
  :: p == TRY -> printf("try")
  :: p == CONFIRM -> printf("confirm")
  :: p == CANCEL -> printf("cancel")
  fi
}

/* Every write of the status: TransactionWriter.write -> TransactionStore.apply. */
inline writeStatus(s) {
  if :: !ALLOWED(st, s) -> badMove = 1 :: else -> skip fi;
  st = s;
  if
  :: s == COMMITTING -> everCommitting = 1
  :: s == ROLLING_BACK -> everRollingBack = 1
  :: else -> skip
  fi
}

/* A round's calls still in the network stay there as late calls: their caller no longer waits. */
inline endRound(i) {
  if :: live[IX(i, 0)] -> orph[0 * 4 + rph[i]] = 1; live[IX(i, 0)] = 0 :: else -> skip fi;
  if :: live[IX(i, 1)] -> orph[1 * 4 + rph[i]] = 1; live[IX(i, 1)] = 0 :: else -> skip fi;
  got[IX(i, 0)] = NOANS; got[IX(i, 1)] = NOANS;
  lost[IX(i, 0)] = 0; lost[IX(i, 1)] = 0;
  rph[i] = 0
}

/* The instance lets the transaction go (done, fenced off, lease lost, or crashed): it forgets it. */
inline forget(i) {
  endRound(i);
  pc[i] = IDLE; held[i] = 0; lver[i] = 0; lst[i] = 0;
  lbst[IX(i, 0)] = 0; lbst[IX(i, 1)] = 0
}

/* The row after a successful compare-and-set with TransactionWriter.ownLease (heldUntil: .held). */
inline tookLease(i) {
  ver++; owner = i; leaseLive = 1; nxt = N_LEASE; held[i] = 1; lver[i] = ver;
  bst[0] = lbst[IX(i, 0)]; bst[1] = lbst[IX(i, 1)]
}

/* The calls of a round (BranchCaller.callAll: every branch of the wave at once). */
inline sendRound(i, p) {
  rph[i] = p;
  printf("i%d sends ", i); say_phase(p); printf(" v%d:", lver[i]);
  if :: lbst[IX(i, 0)] != DONE_FOR(lst[i]) -> live[IX(i, 0)] = 1; printf(" b0") :: else -> skip fi;
  if :: lbst[IX(i, 1)] != DONE_FOR(lst[i]) -> live[IX(i, 1)] = 1; printf(" b1") :: else -> skip fi;
  printf("\n")
}

/*
 * One phase call run by the SDK's barrier in the participant's local transaction:
 * branch-dispatcher.ts BranchDispatcher.dispatch -> barrier.ts BranchBarrier.run ->
 * sql-data-layer.ts SqlDataLayer.runPhaseWith / phaseInTransaction, with barrier-rules.ts
 * barrierInserts and barrierDecision.
 */
inline barrier(b, p, out) {
  if
  :: p == TRY ->
    if
    :: slot1[b] == EMPTY ->
      if
      /* barrierDecision('phase1', [true]): run; the phase-1 row and the reservation commit together */
      :: slot1[b] = BY_TRY; res[b] = R_TRIED; out = OK; printf("b%d try runs: reserved\n", b)
      /* the business method throws BusinessFailure: runPhaseWith -> failedOutcome; the local
         transaction, barrier row included, rolls back; the answer is a 409 */
      :: out = REFUSED; printf("b%d try refused by the business\n", b)
      fi
    /* barrierDecision('phase1', [false], 'phase1'): a duplicate try replays its stored result */
    :: slot1[b] == BY_TRY -> out = OK; printf("b%d try replayed\n", b)
    /* barrierDecision('phase1', [false], 'rollback'): anti-hanging, refuse and change nothing */
    :: slot1[b] == BY_CANCEL ->
#ifdef NO_ANTI_HANGING
      res[b] = R_TRIED; out = OK; printf("b%d try after its cancel runs (mutant): reserved\n", b)
#else
      out = REFUSED; printf("b%d try after its cancel refused (anti-hanging)\n", b)
#endif
    fi
  :: p == CONFIRM ->
    /* barrierInserts('commit'), barrierDecision('commit', ...): run once, a duplicate skips */
    if
    :: !slotC[b] ->
      slotC[b] = 1;
      if :: res[b] != R_TRIED -> badPhase2 = 1 :: else -> skip fi;
      res[b] = R_CONFIRMED; printf("b%d confirm runs\n", b)
    :: else -> printf("b%d confirm duplicate skipped\n", b)
    fi;
    out = OK
  :: p == CANCEL ->
    /* barrierInserts('rollback'): the phase-1 slot first (origin rollback), then the rollback slot */
    if
    :: slotR[b] -> printf("b%d cancel duplicate skipped\n", b) /* decision skip (duplicate) */
    :: else ->
      slotR[b] = 1;
      if
      /* decision skip: null compensation, the marker and nothing else */
      :: slot1[b] == EMPTY -> slot1[b] = BY_CANCEL; printf("b%d cancel before any try: null compensation\n", b)
      /* decision run: release what the try reserved */
      :: else ->
        if :: res[b] != R_TRIED -> badPhase2 = 1 :: else -> skip fi;
        res[b] = R_CANCELLED; printf("b%d cancel runs: released\n", b)
      fi
    fi;
    out = OK
  fi
}

/* ============================ coordinator instances ============================ */
proctype Instance(byte i) {
end_idle:
  do
  /* ---- recovery: RecoveryService.runOnce -> TransactionEngine.claimDue ->
     TransactionWriter.claimDue -> transaction.store.ts claimDue (FOR UPDATE SKIP LOCKED,
     version + 1, lease_owner = me, lease_until = next_attempt_at = now() + LEASE_MS);
     TransactionWriter.held sets heldUntil */
  :: d_step { pc[i] == IDLE && DUE ->
       ver++; owner = i; leaseLive = 1; nxt = N_LEASE; held[i] = 1; lver[i] = ver; lst[i] = st;
       lbst[IX(i, 0)] = bst[0]; lbst[IX(i, 1)] = bst[1];
       printf("i%d claims the row (", i); say_status(st); printf(") v%d\n", ver);
       if
       /* TransactionEngine.resume: an active tcc row claimed is expired
          (BranchPhasesProcessor.expiredWhenClaimed) -> applyDecision(deadline_passed) */
       :: st == ACTIVE -> pc[i] = DECIDE_RB
       /* TransactionEngine.resume -> deliverPhase2 */
       :: else -> pc[i] = P2_SEND
       fi }

#ifndef NO_ADMIN
  /* ---- AdminService.rollback -> TransactionEngine.decide: reads the row (require, no lease)
     and transition(... 'rollback_requested') on what it read; the write follows (DECIDE_RB) */
  :: d_step { pc[i] == IDLE && adminLeft && st == ACTIVE ->
       adminLeft = 0; lver[i] = ver; lst[i] = st;
       lbst[IX(i, 0)] = bst[0]; lbst[IX(i, 1)] = bst[1]; pc[i] = DECIDE_RB;
       printf("operator asks i%d to roll back (read v%d)\n", i, ver) }
#endif

  /* ---- TransactionEngine.applyDecision: transition(... 'deadline_passed' | 'rollback_requested'),
     active -> rolling_back, by TransactionWriter.write -> TransactionStore.apply (CAS on version)
     with ownLease; fenced off (null): the instance lets the transaction go */
  :: d_step { pc[i] == DECIDE_RB ->
       if
       :: FENCED(i) ->
         writeStatus(ROLLING_BACK); lst[i] = ROLLING_BACK; tookLease(i); pc[i] = P2_SEND;
         printf("i%d writes rolling_back v%d\n", i, ver)
       :: else -> printf("i%d fenced off: rolling_back not written\n", i); forget(i)
       fi }

  /* ---- BranchPhasesProcessor.start -> BranchCaller.callAll(loaded, branches, 'try'), sent only
     while the in-memory lease has CALL_TIMEOUT_MS left, or LeaseLostError
     (TransactionEngine.unlessLeaseLost: the instance lets it go). Check and sends are one step:
     LEASE_MS >= 2 x CALL_TIMEOUT_MS (loadCoordinatorEnv refuses less) means a call that passed
     the check goes out, and is answered or timed out, before the lease runs out, unless the
     instance is paused (the pause fault below). */
  :: d_step { pc[i] == P1_SEND ->
       if
       :: held[i] -> sendRound(i, TRY); pc[i] = P1_WAIT
       :: else -> printf("i%d lease lost: sends nothing\n", i); forget(i)
       fi }

  /* ---- every try answered, or lost (its time-out came), or, as a fault, a try timed out while
     still in flight (it stays in the network, late). BranchPhasesProcessor.start:
     transition(... 'phase1_answered') then transition(... 'phase1_finished'): all prepared ->
     committing, else rolling_back (branch_failed; a pending branch's outcome is unknown); the
     decision with the answers in one TransactionWriter.write -> TransactionStore.apply (CAS on
     version) with ownLease; fenced off: writer.load, not its lease (finish), nothing more. */
  :: d_step { pc[i] == P1_WAIT && (COMPLETE(i) || faults > 0) ->
       if :: !COMPLETE(i) -> faults--; printf("i%d: a try times out in flight\n", i) :: else -> skip fi;
       if
       :: got[IX(i, 0)] == OK && got[IX(i, 1)] == OK -> lst[i] = COMMITTING
       :: else -> lst[i] = ROLLING_BACK
       fi;
       lbst[IX(i, 0)] = (got[IX(i, 0)] == OK -> PREPARED : (got[IX(i, 0)] == REFUSED -> FAILED : PENDING));
       lbst[IX(i, 1)] = (got[IX(i, 1)] == OK -> PREPARED : (got[IX(i, 1)] == REFUSED -> FAILED : PENDING));
       endRound(i);
       if
       :: FENCED(i) ->
         writeStatus(lst[i]); tookLease(i); pc[i] = P2_SEND;
         printf("i%d writes ", i); say_status(lst[i]); printf(" v%d\n", ver)
       :: else -> printf("i%d fenced off: decision not written\n", i); forget(i)
       fi }

  /* ---- TransactionEngine.deliverPhase2: processor.phase2Wave (state-machine.ts
     branchesAwaitingPhase2: every branch not yet done) -> BranchCaller.callAll(current, wave,
     'confirm' | 'cancel'), again only under the in-memory lease (or LeaseLostError). */
  :: d_step { pc[i] == P2_SEND ->
       if
       :: held[i] ->
         /* the property fenced_phase2: the sender's version is the row's, and the row's lease is its own and unexpired */
         if :: !(ver == lver[i] && owner == i && leaseLive) -> staleSend = 1 :: else -> skip fi;
         sendRound(i, (lst[i] == COMMITTING -> CONFIRM : CANCEL)); pc[i] = P2_WAIT
       :: else -> printf("i%d lease lost: sends nothing\n", i); forget(i)
       fi }

  /* ---- the round's answers (or time-outs): transition(... 'phase2_answered'): each ok branch
     is done, all done -> committed / rolled_back; TransactionWriter.write ->
     TransactionStore.apply (CAS on version): terminal -> lease and next_attempt_at NULL;
     incomplete -> lease NULL, next_attempt_at = retryDelayMs (due later, any instance claims it).
     The instance stops either way (terminal; `break` after an incomplete round; fenced off: null). */
  :: d_step { pc[i] == P2_WAIT && (COMPLETE(i) || faults > 0) ->
       if :: !COMPLETE(i) -> faults--; printf("i%d: a call times out in flight\n", i) :: else -> skip fi;
       if :: got[IX(i, 0)] == OK -> lbst[IX(i, 0)] = DONE_FOR(lst[i]) :: else -> skip fi;
       if :: got[IX(i, 1)] == OK -> lbst[IX(i, 1)] = DONE_FOR(lst[i]) :: else -> skip fi;
       if
       :: FENCED(i) ->
         if
         :: lbst[IX(i, 0)] == DONE_FOR(lst[i]) && lbst[IX(i, 1)] == DONE_FOR(lst[i]) ->
           writeStatus((lst[i] == COMMITTING -> COMMITTED : ROLLED_BACK)); nxt = N_NULL
#ifdef NO_RETRY
         :: else -> writeStatus(lst[i]); nxt = N_NULL /* mutant: the incomplete round schedules no retry */
#else
         :: else -> writeStatus(lst[i]); nxt = N_NOW
#endif
         fi;
         ver++; owner = NOBODY; leaseLive = 0;
         bst[0] = lbst[IX(i, 0)]; bst[1] = lbst[IX(i, 1)];
         printf("i%d writes ", i); say_status(st); printf(" v%d\n", ver)
       :: else -> printf("i%d fenced off: phase-2 answers not written\n", i)
       fi;
       forget(i) }

  /* ---- fault: the process crashes (kill -9; crash-points.ts): its memory is gone, its calls
     stay in the network; the row keeps its lease until that runs out (Clock). */
  :: d_step { pc[i] != IDLE && faults > 0 -> faults--; printf("i%d crashes\n", i); forget(i) }

  /* ---- fault: the process is paused (GC, a stalled event loop, a slow database) past its
     lease: its in-memory lease (heldUntil) and the row's lease_until both pass (the row's is
     not earlier: TransactionWriter.held counts from before the write that took it). */
  :: d_step { held[i] && faults > 0 ->
       faults--; held[i] = 0;
       if :: owner == i -> leaseLive = 0 :: else -> skip fi;
       printf("i%d paused past its lease\n", i) }
  od
}

/* ============================ participants ============================ */
/* The participant's endpoint (POST {endpoint}/{action}/{phase}, PROTOCOL.md 5.1) in front of
   BranchDispatcher.dispatch, and the network between it and the coordinator. */
inline deliverLive(i, b) {
  barrier(b, rph[i], out);
  if
  /* the answer reaches the caller waiting on that request (BranchCaller.call -> ParticipantInvoker.call) */
  :: got[IX(i, b)] == NOANS -> got[IX(i, b)] = out
  /* the answer to a duplicate: that request's caller already has one */
  :: got[IX(i, b)] != NOANS -> skip
  /* fault: the answer is lost (the effect stays): the caller times out (transient) */
  :: got[IX(i, b)] == NOANS && faults > 0 -> faults--; lost[IX(i, b)] = 1; printf("its answer is lost\n")
  fi;
  if
  :: live[IX(i, b)] = 0
  :: faults > 0 -> faults--; printf("the call is duplicated\n") /* fault: delivered again later */
  fi;
  out = 0
}

inline deliverLate(b, p) {
  printf("late "); say_phase(p); printf(" reaches b%d: ", b);
  barrier(b, p, out);
  if
  :: orph[b * 4 + p] = 0
  :: faults > 0 -> faults--; printf("the call is duplicated\n") /* fault: delivered again later */
  fi;
  out = 0
}

proctype Participant(byte b) {
  byte out;
end_wait:
  do
  /* a call whose caller waits, in any order (reordering) */
  :: atomic { live[IX(0, b)] -> deliverLive(0, b) }
  :: atomic { live[IX(1, b)] -> deliverLive(1, b) }
  /* fault: a call lost on its way (network, participant down, a 5xx before the barrier's
     transaction): ParticipantInvoker.call times out, a transient outcome */
  :: d_step { live[IX(0, b)] && faults > 0 -> faults--; live[IX(0, b)] = 0; lost[IX(0, b)] = 1; printf("i0's call to b%d is lost\n", b) }
  :: d_step { live[IX(1, b)] && faults > 0 -> faults--; live[IX(1, b)] = 0; lost[IX(1, b)] = 1; printf("i1's call to b%d is lost\n", b) }
  /* a late call (its caller timed out or crashed) reaches BranchDispatcher.dispatch (the barrier
     above), its answer to nobody ... */
  :: atomic { orph[b * 4 + TRY] -> deliverLate(b, TRY) }
  :: atomic { orph[b * 4 + CONFIRM] -> deliverLate(b, CONFIRM) }
  :: atomic { orph[b * 4 + CANCEL] -> deliverLate(b, CANCEL) }
  /* ... or never arrives (the network drops it; no fault needed: nobody waits for it) */
  :: d_step { orph[b * 4 + TRY] -> orph[b * 4 + TRY] = 0 }
  :: d_step { orph[b * 4 + CONFIRM] -> orph[b * 4 + CONFIRM] = 0 }
  :: d_step { orph[b * 4 + CANCEL] -> orph[b * 4 + CANCEL] = 0 }
  od
}

/* ============================ time, operators ============================ */
active proctype Clock() {
end_tick:
  do
  /* the deadline passes (transactions.service.ts create: deadline = createdAt + timeoutMs, and
     next_attempt_at the same for a one-shot tcc): the active row falls due for claimDue, maybe
     before the lease of the instance running phase 1 runs out (timeoutMs < LEASE_MS) */
  :: d_step { st == ACTIVE && !deadline -> deadline = 1; printf("the deadline passes\n") }
  /* the lease of an instance that no longer holds it (it crashed) runs out: lease_until and
     next_attempt_at (the same instant, TransactionWriter.ownLease / claimDue) pass */
  :: d_step { leaseLive && owner != NOBODY && !held[owner] -> leaseLive = 0; printf("i%d's lease runs out\n", owner) }
#ifdef ADMIN_RETRY
  /* AdminService.retry -> ... -> transaction.store.ts makeDue: due now, lease dropped, version + 1, only when
     no instance holds a live lease (lease_owner IS NULL OR lease_until <= now()): a holder is
     driving it already, and fencing it in the database alone would leave its in-memory lease
     alive, so it could send one more round under an out-of-date version. ADMIN_RETRY_OVER_LEASE
     is that earlier behaviour, kept as a mutant. */
  :: d_step { retryLeft && (st == COMMITTING || st == ROLLING_BACK) && RETRY_MAY_TAKE ->
       retryLeft = 0; ver++; owner = NOBODY; leaseLive = 0; nxt = N_NOW;
       printf("operator: retry now (v%d)\n", ver) }
#endif
  od
}

/* Model only: nothing can move any more (spin's timeout) before the transaction ended, a deadlock. */
active proctype Watchdog() {
  timeout -> if :: !TERMINAL -> stuck = 1 :: else -> skip fi
}

init {
  atomic {
    /* transactions.service.ts create -> TransactionEngine.create -> TransactionWriter.create ->
       TransactionStore.insert: the row, active with its branches pending, with instance 0's
       lease; then BranchPhasesProcessor.start on instance 0 */
    pc[0] = P1_SEND; held[0] = 1; lver[0] = 1; lst[0] = ACTIVE;
    lbst[IX(0, 0)] = PENDING; lbst[IX(0, 1)] = PENDING;
    run Instance(0); run Instance(1);
    run Participant(0); run Participant(1)
  }
}

/* ============================ properties ============================ */
/* No branch confirmed while another was cancelled (or had its cancel recorded before any try),
   and no confirm or cancel ever ran on a resource its try had not reserved. */
ltl atomicity { [] (!(res[0] == R_CONFIRMED && (res[1] == R_CANCELLED || slotR[1]))
                 && !(res[1] == R_CONFIRMED && (res[0] == R_CANCELLED || slotR[0]))
                 && !badPhase2) }
/* At the end: committed = every branch confirmed; rolled back = no branch holds anything, and
   none ever can (its phase-1 barrier row is taken, so a late try is refused). */
ltl atomic_end { [] ((st == COMMITTED -> (res[0] == R_CONFIRMED && res[1] == R_CONFIRMED))
                  && (st == ROLLED_BACK -> ((res[0] == R_NONE || res[0] == R_CANCELLED) && slot1[0] != EMPTY
                                          && (res[1] == R_NONE || res[1] == R_CANCELLED) && slot1[1] != EMPTY))) }
/* Once committing, never rolling back, and vice versa; no write moves the row otherwise than
   PROTOCOL.md 2 allows. */
ltl no_reversal { [] (!(everCommitting && everRollingBack) && !badMove) }
/* Null compensation and anti-hanging: a branch whose cancel is recorded never holds a tried
   resource afterwards. */
ltl anti_hanging { [] (!(slotR[0] && res[0] == R_TRIED) && !(slotR[1] && res[1] == R_TRIED)) }
/* No phase-2 call sent under a stale lease: at the send, the sender's version is the row's,
   and the row's lease is the sender's and unexpired. */
ltl fenced_phase2 { [] !staleSend }
/* Never stuck before the end. */
ltl no_deadlock { [] !stuck }
/* Liveness: under weak fairness and the finite fault budget, the transaction ends. */
ltl terminates { <> (st == COMMITTED || st == ROLLED_BACK) }

/* Reachability, against a vacuous model: each formula says something never happens, and spin is
   expected to refute it with a run where it does. */
ltl reach_commit { [] (st != COMMITTED) }
ltl reach_rollback { [] (st != ROLLED_BACK) }
/* a cancel that came before its try (null compensation) */
ltl reach_null_compensation { [] (slot1[0] != BY_CANCEL && slot1[1] != BY_CANCEL) }
/* instance 1, which did not begin the transaction, takes over a commit (recovery) */
ltl reach_takeover_commit { [] !(st == COMMITTING && owner == 1) }
