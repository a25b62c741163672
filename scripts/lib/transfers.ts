/**
 * The bank transfers the fault runners make (`npm run chaos`, `npm run jepsen`): two banks, a
 * debit on one and a credit on the other, as a client of the coordinator makes them in each
 * mode (one-shot or interactive tcc/2pc, saga, AT as 2PC), or, for msg, as the paying bank
 * sends its own two-phase message, or, for workflow, as the runner's own workflow host runs it
 * (scripts/lib/workflow-transfers.ts).
 */
import type { Mode, TransactionView } from '@nest-dtx/protocol';
import { TransactionClient } from '@nest-dtx/sdk';
import { postJson } from './stack.js';
import type { WorkflowTransferHost } from './workflow-transfers.js';

export type Bank = 'bank-a' | 'bank-b';
export const BANKS: readonly Bank[] = ['bank-a', 'bank-b'];
export const other = (bank: Bank): Bank => (bank === 'bank-a' ? 'bank-b' : 'bank-a');
export const OPENING_BALANCE = 100_000;

/**
 * One transfer: its mode, whether the client drives it branch by branch (tcc/2pc), its amount,
 * for msg whether the bank leaves it to the check-back (committed locally but never submitted,
 * or begun and never run locally), and for workflow whether its host's first run stops after
 * the first step (as a host that crashed there), leaving it to the coordinator's resume.
 */
export interface TransferShape {
  mode: Mode;
  /** AT mode: a 2PC transaction whose branches are the banks' at-debit / at-credit. */
  at?: boolean;
  /** Given accounts (the paying bank, the debited and the credited account), for two AT transfers run at once on the same rows. */
  rows?: { from: Bank; debit: string; credit: string };
  interactive: boolean;
  amount: number;
  leave?: 'after_local_commit' | 'before_local_commit' | 'after_first_step';
}

export interface Leg {
  bank: Bank;
  action: 'debit' | 'credit';
  account: string;
  amount: number;
}

/** What a transfer needs of the run it belongs to. */
export interface TransferContext {
  random: () => number;
  accounts: readonly string[];
  /** The bank's own API (its /transfers/msg). */
  bankUrl: (bank: Bank) => string;
  /** Every coordinator instance's URL: a client tries the next one when one does not answer. */
  coordinatorUrls: () => string[];
  /** Every transfer's legs by gid, filled in as the transfer starts. */
  legsByGid: Map<string, Leg[]>;
  clientError: (error: unknown) => void;
  /** How long a msg transfer may stay unsubmitted before the check-back. */
  msgTimeoutMs: number;
  /** The deadline of the other transactions. */
  txTimeoutMs: number;
  /** A key with the client role, when the coordinators require keys. */
  apiKey?: string;
  /** The run's workflow host: only a run that hosts one may draw workflow transfers. */
  workflows?: Pick<WorkflowTransferHost, 'transfer'>;
}

/** What the client was last told of its transaction (a begin's or commit's answer), and when; null when it was told nothing. */
export interface Acknowledged {
  view: Pick<TransactionView, 'gid' | 'status'>;
  at: number;
}

/**
 * One bank transfer as a client makes it: one-shot tcc/2pc, interactive tcc/2pc (the client
 * adds the branches and decides; a refused branch means rollback), a saga, or a bank's msg.
 */
export async function runTransfer(ctx: TransferContext, gid: string, shape: TransferShape, targetUrl: string): Promise<Acknowledged | null> {
  const { random, accounts } = ctx;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const [from, to] = shape.rows ? ([shape.rows.from, other(shape.rows.from)] as const) : random() < 0.5 ? (['bank-a', 'bank-b'] as const) : (['bank-b', 'bank-a'] as const);
  const legs: Leg[] = [
    { bank: from, action: 'debit', account: shape.rows?.debit ?? pick(accounts), amount: shape.amount },
    { bank: to, action: 'credit', account: shape.rows?.credit ?? pick(accounts), amount: shape.amount },
  ];
  ctx.legsByGid.set(gid, legs);
  const told = (view: Pick<TransactionView, 'gid' | 'status'> | null | undefined): Acknowledged | null =>
    view && typeof view.status === 'string' ? { view: { gid: view.gid, status: view.status }, at: Date.now() } : null;
  if (shape.mode === 'msg') {
    // The paying bank sends the message itself: its debit is the local transaction.
    const answer = await postJson<{ error?: string; message?: string; gid?: string; status?: TransactionView['status'] }>(`${ctx.bankUrl(from)}/transfers/msg`, {
      gid,
      from: legs[0].account,
      to: legs[1].account,
      toParticipant: to,
      amount: shape.amount,
      timeoutMs: ctx.msgTimeoutMs,
      ...(shape.leave === 'after_local_commit' ? { skipSubmit: true } : shape.leave === 'before_local_commit' ? { failBeforeLocal: true } : {}),
    }).catch((error: unknown) => {
      ctx.clientError(error);
      return null;
    });
    // 409: a refused debit (the message rolled back). Anything else: the bank could not reach its coordinator, say.
    if (answer && answer.status >= 400 && answer.status !== 409) {
      ctx.clientError(new Error(`msg transfer: HTTP ${answer.status >= 500 ? '5xx' : '4xx'} ${answer.body.error ?? answer.body.message ?? ''}`));
    }
    return answer && answer.status < 300 && answer.body.status ? told({ gid, status: answer.body.status }) : null;
  }
  if (shape.mode === 'workflow') {
    if (!ctx.workflows) throw new Error('a workflow transfer needs a workflow host in the run (TransferContext.workflows)');
    return ctx.workflows.transfer(gid, legs, { timeoutMs: ctx.txTimeoutMs, stopAfterFirstStep: shape.leave === 'after_first_step', targetUrl, clientError: ctx.clientError });
  }
  const calls = legs.map((l) => ({ participant: l.bank, action: shape.at ? `at-${l.action}` : l.action, payload: { accountId: l.account, amount: l.amount } }));
  // As a careful client does: a request that found no coordinator, or one that lost its
  // database, goes again, same gid and body (every call is idempotent), to the next instance.
  const client = new TransactionClient({ coordinatorUrl: [targetUrl, ...ctx.coordinatorUrls().filter((url) => url !== targetUrl)], timeoutMs: 8_000, retries: 3, ...(ctx.apiKey ? { apiKey: ctx.apiKey } : {}) });
  const { mode } = shape;
  let last: Acknowledged | null = null;
  try {
    if (shape.interactive) {
      last = told(await client.begin({ mode, gid, timeoutMs: ctx.txTimeoutMs }));
      try {
        for (const [n, call] of calls.entries()) await client.addBranch(gid, { ...call, branchId: `b${n + 1}` });
      } catch {
        return told(await client.rollback(gid)) ?? last;
      }
      return told(await client.commit(gid)) ?? last;
    }
    if (mode === 'saga') return told(await client.begin({ mode, gid, timeoutMs: ctx.txTimeoutMs, steps: calls.map((call, n) => ({ name: `s${n + 1}`, ...call })) }));
    return told(await client.begin({ mode, gid, timeoutMs: ctx.txTimeoutMs, branches: calls }));
  } catch (error) {
    ctx.clientError(error);
    return last;
  }
}

/** The fault runners' coordinator timing: short leases and calls, so that recovery shows within seconds. */
export const CALL_TIMEOUT_MS = 1_000;
export const LEASE_MS = 3_000;
/** How long a msg transfer may stay unsubmitted before the check-back. */
export const MSG_TIMEOUT_MS = 2_000;

/** The fault runners' coordinator settings (on top of the instance's own: id, database, Redis). */
export const FAULT_RUN_COORDINATOR_ENV: Readonly<Record<string, string>> = {
  LEASE_MS: String(LEASE_MS),
  CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
  RECOVERY_INTERVAL_MS: '200',
  RETRY_BASE_MS: '50',
  RETRY_MAX_MS: '1000',
  // A workflow whose host went quiet is resumed within a second or so, well inside its deadline.
  WORKFLOW_RESUME_MS: '1000',
  WAIT_MAX_MS: '5000',
  LOG_LEVEL: 'warn',
  DB_POOL_SIZE: '10',
};

/** Counts a client's errors into `record`, by message with the numbers masked. */
export const countErrorsInto =
  (record: Record<string, number>) =>
  (error: unknown): void => {
    const text = error instanceof Error ? error.message : String(error);
    const key = text.replace(/[0-9]+/g, 'N').slice(0, 80);
    record[key] = (record[key] ?? 0) + 1;
  };
