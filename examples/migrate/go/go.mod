module sockherd.example/migrate

go 1.19
