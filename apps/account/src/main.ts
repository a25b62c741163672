import { runParticipantService } from '@app/demo-support';
import { AppModule } from './app.module.js';

runParticipantService('account', { PORT: 4001, PARTICIPANT_NAME: 'account' }, (env) => AppModule.forEnv(env));
