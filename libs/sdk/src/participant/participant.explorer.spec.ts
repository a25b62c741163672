import { Injectable } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import type { Json } from '@nest-dtx/protocol';
import { LocalStepCompensation, MsgAction, SagaAction, TccAction, TransactionParticipant, XaAction } from './decorators.js';
import { ParticipantExplorer, type BranchContext } from './participant.explorer.js';

@Injectable()
@TransactionParticipant()
class Wallet {
  readonly calls: string[] = [];

  @TccAction({ name: 'debit', confirm: 'confirmDebit', cancel: 'cancelDebit' })
  tryDebit(): Json {
    this.calls.push('try');
    return { held: true };
  }

  confirmDebit(): void {
    this.calls.push('confirm');
  }

  cancelDebit(): void {
    this.calls.push('cancel');
  }

  @SagaAction({ name: 'debit', compensate: 'refund' })
  pay(): void {
    this.calls.push('execute');
  }

  refund(): void {
    this.calls.push('compensate');
  }

  @XaAction()
  transfer(): void {
    this.calls.push('prepare');
  }

  @MsgAction({ name: 'debit' })
  debitByMessage(): void {
    this.calls.push('msg execute');
  }
}

@Injectable()
@TransactionParticipant()
class Impostor {
  @MsgAction({ name: 'dtx-msg-check' })
  check(): void {}
}

/** Decorated methods on a class that is not a participant are not actions. */
@Injectable()
class NotAParticipant {
  @TccAction({ name: 'ghost', confirm: 'c', cancel: 'x' })
  ghost(): void {}
}

@Injectable()
@TransactionParticipant()
class Broken {
  @TccAction({ name: 'broken', confirm: 'doesNotExist', cancel: 'cancel' })
  tryIt(): void {}

  cancel(): void {}
}

@Injectable()
@TransactionParticipant()
class Invoices {
  readonly voided: Json[] = [];

  @LocalStepCompensation()
  voidInvoice(payload: Json): void {
    this.voided.push(payload);
  }

  @LocalStepCompensation({ name: 'releaseNumber' })
  release(): void {}
}

@Injectable()
@TransactionParticipant()
class DebitAgain {
  @TccAction({ name: 'debit', confirm: 'ok', cancel: 'ok' })
  tryIt(): void {}

  ok(): void {}
}

async function explorerWith(...providers: (new () => object)[]) {
  const module = await Test.createTestingModule({ imports: [DiscoveryModule], providers: [ParticipantExplorer, ...providers] }).compile();
  await module.init();
  return module;
}

describe('ParticipantExplorer', () => {
  it('finds every decorated action with its phase methods, bound to the provider instance', async () => {
    const module = await explorerWith(Wallet, NotAParticipant);
    const explorer = module.get(ParticipantExplorer);
    const wallet = module.get(Wallet);

    const tcc = explorer.get('debit', 'tcc');
    expect(tcc && Object.keys(tcc.handlers).sort()).toEqual(['cancel', 'confirm', 'try']);
    expect(await tcc?.handlers.try?.({}, {} as BranchContext)).toEqual({ held: true });
    await tcc?.handlers.confirm?.({}, {} as BranchContext);
    await explorer.get('debit', 'saga')?.handlers.compensate?.({}, {} as BranchContext);
    expect(wallet.calls).toEqual(['try', 'confirm', 'compensate']);

    expect(explorer.get('transfer', '2pc')).toMatchObject({ mode: '2pc', xa: true });
    expect(explorer.get('ghost', 'tcc')).toBeUndefined();
    expect(explorer.get('debit', '2pc')).toBeUndefined();
    await explorer.get('debit', 'msg')?.handlers.execute?.({}, {} as BranchContext);
    expect(wallet.calls).toEqual(['try', 'confirm', 'compensate', 'msg execute']);
    expect(explorer.get('debit', 'msg')).toMatchObject({ mode: 'msg', xa: false });
    // With the SDK's own check action, which every participant registers (mode msg).
    expect(explorer.list().map((a) => `${a.mode}/${a.name}`).sort()).toEqual(['2pc/transfer', 'msg/debit', 'msg/dtx-msg-check', 'saga/debit', 'tcc/debit']);
    expect(explorer.get('dtx-msg-check', 'msg')).toMatchObject({ builtIn: 'msg-check', handlers: {} });
  });

  it('has the check action even without any action of the app, and refuses an app action of that name', async () => {
    const module = await explorerWith(NotAParticipant);
    expect(module.get(ParticipantExplorer).list().map((a) => `${a.mode}/${a.name}`)).toEqual(['msg/dtx-msg-check']);
    await expect(explorerWith(Impostor)).rejects.toThrow('Impostor: the action name "dtx-msg-check" is the SDK\'s own');
  });

  it('fails the boot with a clear message when a decorator names a method that does not exist', async () => {
    await expect(explorerWith(Broken)).rejects.toThrow('Broken: action "broken" names confirm method "doesNotExist", but Broken has no such method');
  });

  it('fails the boot when two providers declare the same action in the same mode', async () => {
    await expect(explorerWith(Wallet, DebitAgain)).rejects.toThrow('tcc action "debit" is declared twice');
  });

  it('registers a @LocalStepCompensation as a saga action with only its compensate, marked for the barrier\'s undo rule', async () => {
    const module = await explorerWith(Invoices);
    const explorer = module.get(ParticipantExplorer);
    const action = explorer.get('voidInvoice', 'saga');
    expect(action).toMatchObject({ name: 'voidInvoice', mode: 'saga', xa: false, at: false, localStepCompensation: true });
    expect(Object.keys(action?.handlers ?? {})).toEqual(['compensate']);
    await action?.handlers.compensate?.({ invoice: 'INV-1' }, {} as BranchContext);
    expect(module.get(Invoices).voided).toEqual([{ invoice: 'INV-1' }]);
    expect(explorer.get('releaseNumber', 'saga')).toMatchObject({ localStepCompensation: true });
    expect(explorer.list().map((a) => `${a.mode}/${a.name}`).sort()).toEqual(['msg/dtx-msg-check', 'saga/releaseNumber', 'saga/voidInvoice']);
    // An ordinary saga action is not marked.
    expect((await explorerWith(Wallet)).get(ParticipantExplorer).get('debit', 'saga')).not.toHaveProperty('localStepCompensation');
  });
});
