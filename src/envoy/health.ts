// grpc.health.v1 for the gRPC port: SERVING while gatehouse takes new streams, NOT_SERVING once it
// drains; Watch streams hear the change and end. The generated health code stays in envoy/.
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { HealthCheckResponse_ServingStatus, HealthCheckResponseSchema, type HealthCheckRequest, type HealthCheckResponse } from '../gen/grpc/health/v1/health_pb.js';
import { healthService } from './grpc-services.js';

/** Service names the health service answers for: '' (the whole server) and each API served. */
const SERVICES = ['', 'envoy.service.ext_proc.v3.ExternalProcessor', 'envoy.service.auth.v3.Authorization'];

export class HealthService {
  private readonly watchers = new Set<grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();

  constructor(private readonly accepting: () => boolean) {}

  /** adds grpc.health.v1.Health to `server` */
  addTo(server: grpc.Server): void {
    server.addService(healthService, {
      check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) => {
        if (!SERVICES.includes(call.request.service)) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        callback(null, this.status());
      },
      watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        if (!SERVICES.includes(call.request.service)) {
          call.write(create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN }));
        } else {
          call.write(this.status());
        }
        this.watchers.add(call);
        call.on('cancelled', () => this.watchers.delete(call));
      },
    });
  }

  /** the drain began: every watcher hears NOT_SERVING and its stream ends */
  draining(): void {
    for (const watcher of this.watchers) {
      watcher.write(this.status());
      watcher.end();
    }
    this.watchers.clear();
  }

  private status(): HealthCheckResponse {
    return create(HealthCheckResponseSchema, {
      status: this.accepting() ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING,
    });
  }
}
