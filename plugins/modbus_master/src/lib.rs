//! hat-gateway compatible Modbus master device (`modbus_master`).
