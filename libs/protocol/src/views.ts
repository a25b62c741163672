import type { BranchStatus, GlobalStatus, Mode, RollbackReason } from './states.js';

/** Any JSON value: payloads, results and metadata are opaque to the coordinator. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A branch as the API shows it (PROTOCOL.md 3.4). */
export interface BranchView {
  branchId: string;
  participant: string;
  action: string;
  status: BranchStatus;
  attempts: number;
  lastError: Json;
  result: Json;
}

/** A global transaction as the API shows it (PROTOCOL.md 3.4). */
export interface TransactionView {
  gid: string;
  mode: Mode;
  status: GlobalStatus;
  reason: RollbackReason | null;
  createdAt: string;
  updatedAt: string;
  deadline: string;
  metadata: JsonObject;
  needsAttention: boolean;
  branches: BranchView[];
}

/** The answer to adding a branch (PROTOCOL.md 3.2). */
export interface BranchOutcomeView {
  branchId: string;
  status: BranchStatus;
  result: Json;
}

export interface ParticipantView {
  name: string;
  transport: string;
  endpoint: string | null;
  host: string | null;
  port: number | null;
  actions: { name: string; modes: Mode[] }[];
  updatedAt: string;
}

/**
 * The answer to a registration (PROTOCOL.md 4): the participant as listed, plus its own secret
 * for verifying the coordinator's calls (5.5), which no listing ever shows.
 */
export interface ParticipantRegistrationView extends ParticipantView {
  signingSecret: string;
}

/** One entry of a transaction's history (PROTOCOL.md 6). */
export interface TransactionEventView {
  at: string;
  type: string;
  branchId: string | null;
  from: string | null;
  to: string | null;
  detail: Json;
}

export interface TransactionDetailView extends TransactionView {
  events: TransactionEventView[];
}

export interface TransactionPage {
  items: TransactionView[];
  nextCursor: string | null;
}

export interface TransactionCounts {
  byStatus: Record<string, number>;
  byMode: Record<string, number>;
  needsAttention: number;
  total: number;
}
