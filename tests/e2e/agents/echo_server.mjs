#!/usr/bin/env node
// A minimal MCP tool server for the gateway bench (bench_mcp.mjs): one tool, `echo`, answering with the
// length of its `text` argument (the answer stays small whatever the request's size), on stdio.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'writ-echo', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [{ name: 'echo', description: 'length of text', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } }],
}));
server.setRequestHandler(CallToolRequestSchema, async (req) => ({
  content: [{ type: 'text', text: String((req.params.arguments?.text ?? '').length) }],
}));
await server.connect(new StdioServerTransport());
