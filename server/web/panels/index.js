// The console's panels, in page order. A later feature adds one module under panels/ and
// one line here; see app.js for the contract ({id, title, slot, mount(root, app)}).
import auth from './auth.js';
import activity from './activity.js';
import projects from './projects.js';
import tables from './tables.js';
import chat from './chat.js';
import pcap from './pcap.js';
import imports from './imports.js';
import admin from './admin.js';

export default [auth, activity, projects, tables, chat, pcap, imports, admin];
